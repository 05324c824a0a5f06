"""Profiling real converted digits models in a fresh child process on this machine."""

import json
import subprocess
import sys

import numpy as np
import pytest

from edgekit.errors import ModelLoadError, UsageError
from edgekit.profile import child, profiler, schema
from edgekit.profile.remote_ssh import bundle_source


@pytest.fixture(scope="module")
def int8_doc(digits_models):
    return profiler.profile_model(digits_models("int8"), runs=60, warmup=5, threads="1,2")


def test_one_row_per_thread_count_with_every_figure(int8_doc, digits_models):
    doc = schema.validate(int8_doc, "int8")
    assert [r["threads"] for r in doc["rows"]] == [1, 2]
    assert doc["model"]["sha256"] and doc["model"]["size_bytes"] == digits_models("int8").stat().st_size
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["cpu_model"]
    for row in doc["rows"]:
        lat, mem, t = row["latency_ms"], row["memory"], row["timing"]
        assert lat["count"] == 60 == len(row["samples_ms"])
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert t["load_ms"] > 0 and t["init_ms"] > 0 and t["first_inference_ms"] > 0
        assert row["interpreter"]["package"] == "ai-edge-litert" and row["interpreter"]["version"]
        assert 0 < mem["start_rss_mb"] < mem["baseline_rss_mb"] <= mem["after_load_rss_mb"] <= mem["peak_mb"]
        assert mem["peak_mb"] == max(mem["peak_rss_sampled_mb"], mem["ru_maxrss_mb"])
        assert mem["uss_mb"] > 0 and mem["pss_mb"] >= mem["uss_mb"]
        # the OS's own account (the parent's wait4) agrees with what the child reports
        assert mem["os_ru_maxrss_mb"] == pytest.approx(mem["ru_maxrss_mb"], rel=0.05)
        assert row["per_op"]["available"] is False and "no op profiler" in row["per_op"]["reason"]
    json.dumps(doc)


def test_a_fat_parent_does_not_pollute_the_childs_memory(digits_models):
    ballast = np.ones(300 * 2**20, dtype=np.uint8)  # 300 MB resident in this process
    doc = profiler.profile_model(digits_models("int8"), runs=5, warmup=1)
    assert doc["rows"][0]["memory"]["peak_mb"] < 250
    del ballast


def test_input_file_is_quantized_for_an_int8_model(digits_models, digits, tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, digits.x_test[:16])
    doc = profiler.profile_model(digits_models("int8"), runs=20, warmup=2, input=x)
    row = doc["rows"][0]
    assert row["inputs"][0]["dtype"] == "int8" and row["inputs"][0]["samples"] == 16
    assert doc["settings"]["input"] == {"serving_default_image:0": str(x.resolve())}
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 5), np.float32))
    with pytest.raises(UsageError, match=r"has shape \[1, 8, 8, 1\]; the file holds \[3, 5\]"):
        profiler.profile_model(digits_models("int8"), runs=2, input=bad)


def test_bad_models_get_one_line_load_errors(tmp_path, custom_op_model, digits_models):
    text = tmp_path / "notes.tflite"
    text.write_text("hello, not a model")
    with pytest.raises(ModelLoadError, match="no 'TFL3' identifier"):
        profiler.profile_model(text)
    with pytest.raises(ModelLoadError, match="model file not found"):
        profiler.profile_model(tmp_path / "missing.tflite")
    with pytest.raises(ModelLoadError, match="unresolved custom op EdgekitMadeUpOp"):
        profiler.profile_model(custom_op_model, runs=2)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(digits_models("fp32").read_bytes()[:600])
    with pytest.raises(ModelLoadError, match="cannot load this model"):
        profiler.profile_model(truncated, runs=2)


def test_bad_options_are_usage_errors(digits_models):
    for kwargs in ({"threads": "1,x"}, {"threads": "0"}, {"runs": 0}, {"warmup": -1}, {"input": "nope.npy"}):
        with pytest.raises(UsageError):
            profiler.profile_model(digits_models("int8"), **kwargs)


def _result(stdout: str) -> dict:
    line = next(ln for ln in stdout.splitlines() if ln.startswith(child.RESULT_TAG))
    return json.loads(line[len(child.RESULT_TAG):])


def test_child_runs_standalone_as_a_script(digits_models):
    cfg = {"model": str(digits_models("fp32")), "runs": 5, "warmup": 1, "threads": 1}
    r = subprocess.run([sys.executable, child.__file__, json.dumps(cfg)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(_result(r.stdout)["timing"]["samples_ms"]) == 5


BLOCK_EDGEKIT = (
    "import sys\n"
    "class _Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'edgekit' or name.startswith('edgekit.'):\n"
    "            raise ImportError('blocked: ' + name)\n"
    "sys.meta_path.insert(0, _Block())\n"
    "source = sys.stdin.read()\n"
    "exec(compile(source, '<stdin>', 'exec'), {'__name__': '__main__'})\n"
)


def _int8_cfg(digits_models, digits, tmp_path) -> dict:
    """Float digits for the int8 model: the child quantizes them with edgekit/quant.py."""
    np.save(tmp_path / "x.npy", digits.x_test[:3])
    return {"model": str(digits_models("int8")), "runs": 5, "warmup": 1, "threads": 1, "progress": True,
            "input": {"files": {"serving_default_image:0": {"path": str(tmp_path / "x.npy"), "key": None}}}}


def test_bundled_child_needs_no_edgekit(digits_models, digits, tmp_path):
    """What SSH pipes to `python3 -`, run with every edgekit import blocked (quant.py travels in the bundle)."""
    cfg = _int8_cfg(digits_models, digits, tmp_path)
    r = subprocess.run([sys.executable, "-I", "-c", BLOCK_EDGEKIT, json.dumps(cfg)], input=bundle_source(),
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    result = _result(r.stdout)
    assert result["machine"]["cores"] >= 1
    assert result["inputs"][0]["dtype"] == "int8" and result["inputs"][0]["samples"] == 3
    assert child.PROGRESS_TAG + "runs 5 5" in r.stderr and r.stderr.startswith(child.PID_TAG)


def test_child_as_a_script_reads_quant_beside_the_package(digits_models, digits, tmp_path):
    cfg = _int8_cfg(digits_models, digits, tmp_path)
    r = subprocess.run([sys.executable, child.__file__, json.dumps(cfg)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _result(r.stdout)["inputs"][0]["samples"] == 3


def test_child_reports_a_missing_interpreter_package(digits_models):
    cfg = {"model": str(digits_models("fp32")), "runs": 1, "backend": "tflite-runtime-not-installed"}
    r = subprocess.run([sys.executable, child.__file__, json.dumps(cfg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == child.ERROR_EXIT
    assert _result(r.stdout)["error"]["kind"] == "missing_dependency"


def test_a_model_that_kills_the_interpreter_only_kills_the_child(crashing_model):
    with pytest.raises(ModelLoadError, match="the measuring process died with SIGSEGV"):
        profiler.profile_model(crashing_model, runs=2)


@pytest.mark.parametrize("package", ["tflite-runtime", "tensorflow"])
def test_every_interpreter_package_can_be_profiled(digits_models, package):
    doc = profiler.profile_model(digits_models("fp32"), runs=5, warmup=2, backend=package)
    (row,) = doc["rows"]
    assert row["interpreter"]["package"] == package and row["interpreter"]["version"][0].isdigit()
    assert row["latency_ms"]["count"] == 5
