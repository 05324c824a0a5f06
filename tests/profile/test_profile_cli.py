"""`edgekit profile` and `edgekit compare` on the command line, and the demo's profile block."""

import json
import platform
import subprocess
import sys

import pytest

from edgekit.cli import main
from edgekit.profile import profile_demo, schema


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def results(digits_models, tmp_path_factory):
    """fp32 and int8 profile results written by the CLI (JSON + HTML), and fp32 a second time."""
    d = tmp_path_factory.mktemp("results")
    out = {}
    for name, recipe in (("fp32", "fp32"), ("int8", "int8"), ("fp32-again", "fp32")):
        code = main(["profile", str(digits_models(recipe)), "--runs", "150", "--warmup", "10",
                     "--json", str(d / f"{name}.json"), "--report", str(d / f"{name}.html")])
        assert code == 0
        out[name] = d / f"{name}.json"
    return out


def test_profile_writes_schema_json_and_a_report_with_plots(results, capsys):
    doc = schema.load(results["int8"])
    assert doc["schema"] == "edgekit.profile/1" and doc["budget"] is None
    assert doc["method"]["latency"].startswith("wall time of the engine session's invoke alone")
    page = results["int8"].with_suffix(".html").read_text()
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page.split("<svg")[0]
    assert page.count("<svg") == 2  # percentile plot + one histogram (one thread count)
    assert 'class="bar"' in page and 'class="curve"' in page and "not available" in page


def test_target_of_another_machine_is_not_measured_there(digits_models, tmp_path, capsys):
    """x86 timings judged against a Raspberry Pi: no PASS/FAIL, the report says so, exit 0 (issue 19 item 3)."""
    out_json, html = tmp_path / "r.json", tmp_path / "r.html"
    code, out, err = run(capsys, "profile", digits_models("int8"), "--runs", 20, "--target", "raspberry-pi-4",
                         "--max-memory-mb", 1, "--json", out_json, "--report", html)
    assert code == 0, err  # not a failure: there is no verdict to fail
    assert "p50" in out and "p95" in out and "peak MB" in out and "USS" in out
    assert "budget (raspberry-pi-4): p95 <= 100 ms, peak <= 1 MB: not measured on raspberry-pi-4" in out
    assert "these timings are not from the target: measured on x86_64" in out
    assert "PASS" not in out and "FAIL" not in out
    assert "\n4 " in out  # the profile's 4 threads, when --threads is not given
    assert "per-op timings: not available" in out
    doc = json.loads(out_json.read_text())
    assert doc["budget"]["passed"] is None and "not on raspberry-pi-4 (aarch64)" in doc["budget"]["not_measured"]
    assert doc["machine"]["emulated"] is None
    page = html.read_text()
    assert "not measured on raspberry-pi-4" in page and "these timings are not from the target" in page
    cores = doc["machine"]["cpu_affinity"] or doc["machine"]["cores"]
    if cores < 4:  # this machine has 2 cores: the profile's 4 threads are warned
        assert f"4 threads on a machine with {cores} cores" in out


@pytest.mark.skipif(platform.machine() != "x86_64", reason="judged against the x86-64-edge profile")
def test_over_budget_exits_1_and_still_writes_the_json(digits_models, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code, out, err = run(capsys, "profile", digits_models("int8"), "--runs", 10, "--threads", "1,2",
                         "--target", "x86-64-edge", "--max-memory-mb", 1, "--json", out_json)
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        "error: over budget of x86-64-edge: " + "; ".join(
            f"{n}: peak {r['memory']['peak_mb']:.4g} MB > 1 MB" for n, r in
            zip(("1 thread", "2 threads"), json.loads(out_json.read_text())["rows"])))
    assert json.loads(out_json.read_text())["budget"]["passed"] is False


def test_bad_input_is_one_line_exit_2(tmp_path, custom_op_model, capsys):
    notes = tmp_path / "notes.tflite"
    notes.write_text("not a model")
    for args, needle in (([notes], "not a TensorFlow Lite model"),
                         ([custom_op_model], "unresolved custom op EdgekitMadeUpOp"),
                         ([notes, "--host", "a@b", "--adb", "x"], "use --host or --adb, not both"),
                         ([custom_op_model, "--threads", "two"], "--threads"),
                         ([custom_op_model, "--target", "no-such-board"], "no-such-board")):
        code, _, err = run(capsys, "profile", *args)
        assert code == 2, (args, err)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


def test_compare_says_what_is_noise(results, tmp_path, capsys):
    out_json = tmp_path / "cmp.json"
    code, out, err = run(capsys, "compare", results["fp32"], results["int8"], "--json", out_json)
    assert code == 0, err
    assert out.startswith("A: digits-fp32.tflite on") and "B: digits-int8.tflite on" in out
    assert "p50 latency (ms)" in out and "peak memory (MB)" in out and "model size (KB)" in out
    cmp = json.loads(out_json.read_text())
    size = cmp["model_size"]
    assert size["ratio"] < 0.5  # int8 is a quarter of fp32, give or take
    p50 = cmp["rows"][0]["metrics"][0]
    assert p50["metric"] == "p50 latency" and p50["noise"] in (True, False) and len(p50["ci"]) == 2

    code, out, _ = run(capsys, "compare", results["fp32"], results["fp32-again"])
    assert code == 0 and ("inside noise" in out or "real difference" in out)


def test_compare_rejects_what_is_not_a_result(results, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    code, _, err = run(capsys, "compare", results["fp32"], bad)
    assert code == 2 and "not an edgekit profile result" in err and err.count("\n") == 1


def test_profile_help_is_fast_and_without_tensorflow():
    r = subprocess.run([sys.executable, "-c", (
        "import sys\nfrom edgekit.cli import main\nmain(['profile', '--help']); main(['compare', '--help'])\n"
        "import edgekit.profile.profiler, edgekit.profile.report, edgekit.profile.comparison, "
        "edgekit.profile.remote_ssh, edgekit.profile.remote_adb\n"
        "assert 'tensorflow' not in sys.modules\nprint('ok')")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr
    assert "Example: edgekit profile" in r.stdout and "Example: edgekit compare" in r.stdout


def test_demo_block_profiles_fp32_against_int8(digits_models):
    text = profile_demo(digits_models("fp32"), digits_models("int8"), runs=50, warmup=5)
    assert "digits-fp32.tflite: p50" in text and "digits-int8.tflite: p50" in text
    assert "A: digits-fp32.tflite" in text and "noise test" in text
