"""The adb path: benchmark_model's recorded output parsed into edgekit rows, and a FAKE adb on PATH
(there is no Android phone here; the fake only plays back recorded output, see fake_adb.py)."""

import json
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.profile import benchmark_output, budgets
from edgekit.profile.remote_adb import row_from_output

SAMPLES = Path(__file__).resolve().parent / "data"


def _parse(name):
    return benchmark_output.parse((SAMPLES / name).read_text())


def test_2018_legacy_format():
    out = _parse("2018-legacy.txt")
    assert out["threads"] == 2 and out["graph"].endswith("mobilenet_v1_1.0_224_quant.tflite")
    assert out["init_ms"] == pytest.approx(9.933)
    assert out["warmup"]["count"] == 7 and out["first_inference_ms"] == pytest.approx(127.425)
    assert out["runs"] == pytest.approx({"count": 15, "first": 66.753, "curr": 66.8, "min": 66.699, "max": 66.838,
                                         "mean": 66.7676, "std": 0.039})
    assert out["memory"] == {"peak_mb": None, "init_mb": None, "delta_mb": None}
    assert out["ops"] == []


def test_2020_peak_memory_format():
    out = _parse("2020-peak-memory-op-profiling.txt")
    assert out["threads"] == 4 and out["model_size_mb"] == pytest.approx(0.004448)
    assert out["init_ms"] == pytest.approx(0.855) and out["first_inference_ms"] == pytest.approx(49.06)
    assert out["runs"]["count"] == 50 and out["runs"]["mean"] == pytest.approx(33.2094)
    assert out["memory"]["peak_mb"] == pytest.approx(12.8672) and out["memory"]["init_mb"] == 0


def test_2022_memory_delta_format():
    out = _parse("2022-memory-delta.txt")
    assert out["threads"] == 1 and out["runs"]["count"] == 1000 and out["runs"]["max"] == pytest.approx(1.19)
    assert out["memory"]["peak_mb"] is None and out["memory"]["delta_mb"] == pytest.approx(12.1055)


def test_op_profiling_table_and_e_notation():
    out = _parse("2022-op-profiling-riscv.txt")
    assert out["runs"]["mean"] == pytest.approx(2950.34)  # avg=2.95034e+06 us
    assert out["warmup"] == pytest.approx({"count": 1, "curr": 3512.391, "min": 3512.391, "max": 3512.391,
                                           "mean": 3512.391, "std": 0.0})
    ops = out["ops"]  # the regular runs' table, not the initialization one
    assert len(ops) == 8 and {o["type"] for o in ops} == {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D",
                                                          "SQUEEZE", "SOFTMAX"}
    assert ops[0] == pytest.approx({"type": "CONV_2D", "name": "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0",
                                    "start_ms": 0.066, "first_ms": 87.754, "avg_ms": 60.957, "percent": 2.066,
                                    "cdf_percent": 2.066, "mem_kb": 0.0, "times_called": 1})


def test_space_aligned_xnnpack_table_with_info_prefix():
    text = (
        "INFO: Operator-wise Profiling Info for Regular Benchmark Runs:\n"
        "============================== Run Order ==============================\n"
        "      [node type]          [first]        [avg ms]            [%]          [cdf%]          [mem KB]"
        "        [times called]  [Name]\n"
        "         QUANTIZE            0.199           0.203         1.328%          1.328%             0.000"
        "                1       [tfl.quantize]:0\n"
        "  Convolution (NHWC, QC8) IGEMM            0.398           0.407         2.658%          3.986%"
        "             0.000                1       Delegate/Convolution (NHWC, QC8) IGEMM:0\n\n"
    )
    ops = benchmark_output.parse(text)["ops"]
    assert [o["type"] for o in ops] == ["QUANTIZE", "Convolution (NHWC, QC8) IGEMM"]
    assert ops[1]["avg_ms"] == pytest.approx(0.407) and ops[1]["name"].startswith("Delegate/Convolution")


def test_rows_have_no_invented_percentiles_and_budgets_use_max():
    row = row_from_output(_parse("2022-memory-delta.txt"), 1, "benchmark_model")
    assert row["latency_ms"]["p50"] is None and row["latency_ms"]["p95"] is None
    assert row["samples_ms"] == [] and row["memory"]["peak_mb"] is None
    assert row["per_op"]["available"] is False and "--per-op" in row["per_op"]["reason"]
    doc = {"rows": [row]}
    b = budgets.check_budget(doc, max_latency_ms=1.1)
    assert b["rows"][0]["latency_metric"] == "max" and not b["passed"]  # max 1.19 ms > 1.1 ms


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fp32(digits_models):
    return digits_models("fp32")


@pytest.fixture()
def binary(tmp_path):
    b = tmp_path / "benchmark_model"
    b.write_bytes(b"\x7fELF stand-in for the user's arm64 benchmark_model")
    return b


def test_profile_over_fake_adb_pushes_runs_and_parses(fp32, binary, fake_adb, tmp_path, capsys):
    log, use_output = fake_adb
    use_output(SAMPLES / "2022-op-profiling-riscv.txt")
    out_json, out_html = tmp_path / "phone.json", tmp_path / "phone.html"
    code, out, err = run(capsys, "profile", fp32, "--adb", "fake-phone", "--benchmark-binary", binary,
                         "--threads", "4", "--runs", 50, "--per-op", "--json", out_json, "--report", out_html)
    assert code == 0, err
    calls = [json.loads(ln) for ln in log.read_text().splitlines()]
    pushes = [c for c in calls if c[2] == "push"]
    assert [p[3] for p in pushes] == [str(fp32), str(binary)]
    bench = [c for c in calls if c[2] == "shell" and "benchmark_model" in c[3] and "--graph=" in c[3]]
    assert len(bench) == 1 and "--num_threads=4" in bench[0][3] and "--enable_op_profiling=true" in bench[0][3]
    doc = json.loads(out_json.read_text())
    assert doc["device"] == {"kind": "adb", "name": "fake-phone"}
    assert doc["machine"]["cpu_model"] == "FakeVendor Fake Phone 1 (FakeSoC)" and doc["machine"]["cores"] == 8
    row = doc["rows"][0]
    assert row["latency_ms"]["mean"] == pytest.approx(2950.34) and row["per_op"]["available"]
    assert "CONV_2D" in out and "per-op timings" in out
    assert "No per-run samples" in out_html.read_text()


def test_adb_errors_are_one_line_exit_2(fp32, binary, fake_adb, tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, "profile", fp32, "--adb", "other-phone", "--benchmark-binary", binary)
    assert code == 2 and err.startswith("error: other-phone: adb cannot reach the phone") and err.count("\n") == 1
    code, _, err = run(capsys, "profile", fp32, "--adb", "fake-phone")
    assert code == 2 and "--benchmark-binary" in err
    code, _, err = run(capsys, "profile", fp32, "--adb", "fake-phone", "--benchmark-binary", binary, "--runs", "0")
    assert code == 2 and err.strip() == "error: --runs must be at least 1, got 0"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, _, err = run(capsys, "profile", fp32, "--adb", "fake-phone", "--benchmark-binary", binary)
    assert code == 2 and err.strip() == ("error: adb not found on PATH; install Android platform-tools "
                                         "(apt-get install adb) to profile on a phone")


def test_compare_a_phone_against_this_machine(fp32, binary, fake_adb):
    from edgekit.profile.comparison import compare, render_comparison
    from edgekit.profile.profiler import profile_model
    from edgekit.profile.remote_adb import profile_adb

    phone = profile_adb(fp32, "fake-phone", binary, threads=4)  # the recording says 4 threads
    here = profile_model(fp32, runs=20, warmup=2, threads=1)
    text = render_comparison(compare(here, phone))
    assert "threads 1 vs 4" in text  # no common thread count: rows pair in order, and the table says so
    assert "p50 latency (ms)" in text and "not measured on both sides" in text
    assert "real difference: normal 95% CI" in text  # the means, from count and std
