"""Issue 10, the runtime's hardening: each test failed on the code before its fix (91f7883)."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from edgekit.cli import main
from edgekit.errors import InferenceError, InputValidationError
from edgekit.runtime import EdgeModel, Policy


# ---- 1. the shadow sees the primary's own outputs ----------------------------------------------
def test_shadow_compares_the_primary_outputs_not_the_fallback_answer(int8_path, fp32_path, ood_sets):
    x = np.concatenate([ood_sets["noise"][:60], ood_sets["inverted"][:60]])
    own = EdgeModel.load(int8_path).predict(x).output.argmax(axis=1)
    ref = EdgeModel.load(fp32_path).predict(x).output.argmax(axis=1)
    expected = int((own != ref).sum())
    assert expected > 0  # int8 and fp32 do disagree on some of these: the count is informative
    with EdgeModel.load(int8_path, fallback=fp32_path, policy=Policy(on_ood="fallback"), shadow=1.0) as model:
        pred = model.predict(x)
        assert pred.sources.count("fallback") >= 100  # the flagged rows were answered by the fallback
        shadow = model.health(wait_for_shadow=True)["shadow"]
    assert shadow["compared"] == len(x) and shadow["disagreed"] == expected


# ---- 4. a tampered model is a security event, also when the fallback answers -------------------
def _tampered(int8_path, tmp_path):
    data = bytearray(int8_path.read_bytes())
    data[-8] ^= 0x01  # one bit in the trailing metadata: still a loadable model, different sha256
    target = tmp_path / int8_path.name
    target.write_bytes(bytes(data))
    manifest = int8_path.with_name(int8_path.stem + ".manifest.json")
    shutil.copy(manifest, target.with_name(manifest.name))
    return target


def test_tampered_model_with_fallback_is_recorded_warned_and_shown(int8_path, fp32_path, digits, tmp_path):
    target = _tampered(int8_path, tmp_path)
    log = tmp_path / "incidents.jsonl"
    with pytest.warns(UserWarning, match="does not match the manifest"):
        model = EdgeModel.load(target, fallback=fp32_path, incident_log=log)
    assert model.predict(digits.x_test[0]).sources == ["fallback"]
    h = model.health()
    assert h["security"]["ok"] is False and h["security"]["events"][0]["kind"] == "tamper"
    assert h["incidents"]["tamper"] == 1 and "load" not in h["incidents"]
    rec = json.loads(log.read_text().splitlines()[0])
    assert rec["kind"] == "tamper" and rec["action"] == "fallback" and rec["file"] == str(target)


def test_run_exits_1_on_a_tampered_model_even_when_the_fallback_answered(int8_path, fp32_path, digits, tmp_path,
                                                                          capsys):
    target = _tampered(int8_path, tmp_path)
    np.save(tmp_path / "x.npy", digits.x_test[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["run", str(target), str(tmp_path / "x.npy"), "--fallback", str(fp32_path)])
    captured = capsys.readouterr()
    assert code == 1 and "[fallback]" in captured.out and "tamper" in captured.err


# ---- 6. the probe: the app's threads, new shapes, a calibration-like input ---------------------
def test_probe_uses_app_threads_new_shapes_and_calibration_means(int8_path, digits, monkeypatch, tmp_path):
    from edgekit.manifest import Manifest
    from edgekit.engine import safeload

    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(safeload, "_memory", {})
    calls = []
    real = safeload.run_probe

    def spy(data, be, delegates, *args, **kwargs):
        calls.append(json.loads(kwargs.get("spec") or "{}"))
        return real(data, be, delegates, *args, **kwargs)

    monkeypatch.setattr(safeload, "run_probe", spy)
    model = EdgeModel.load(int8_path, num_threads=2)
    mean = Manifest.load(int8_path).input_stats("image").mean
    assert len(calls) == 1 and calls[0]["threads"] == 2 and calls[0]["shapes"] is None
    assert calls[0]["fill"]["image"] == pytest.approx(list(mean), abs=1e-5)
    model.predict(digits.x_test[:5])
    assert len(calls) == 2 and calls[1]["shapes"] == [[5, 8, 8, 1]] and calls[1]["threads"] == 2
    model.predict(digits.x_test[:5])
    model.predict(digits.x_test[0])  # back to the load shape: probed at load
    assert len(calls) == 2  # each shape once
    model.predict(digits.x_test[:7])
    assert calls[-1]["shapes"] == [[7, 8, 8, 1]] and len(calls) == 3


def test_a_shape_the_probe_refuses_never_runs_in_process(int8_path, fp32_path, digits, monkeypatch, tmp_path):
    from edgekit.engine import safeload

    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))  # no verdicts from earlier tests
    monkeypatch.setattr(safeload, "_memory", {})
    model = EdgeModel.load(int8_path, fallback=fp32_path)
    model.fallback.predict(digits.x_test[:3])  # the fallback has run this shape: only the primary is refused
    monkeypatch.setattr(safeload, "run_probe", lambda *a, **k: "crashed the probe process (SIGSEGV): hostile")
    pred = model.predict(digits.x_test[:3])
    assert pred.sources == ["fallback"] * 3
    assert pred.incidents[0]["kind"] == "invoke" and "refused input shape [[3, 8, 8, 1]]" in pred.incidents[0]["reason"]


# ---- 7. errors are not disguised; a failed resize keeps the pool slot consistent ---------------
class _BuggyInterpreter:
    """The real interpreter, except that invoke raises what a bug in edgekit's own code would."""

    def __init__(self, interp):
        self._interp = interp

    def __getattr__(self, name):
        return getattr(self._interp, name)

    def invoke(self):
        raise TypeError("unsupported operand type(s): a bug, not the model")


def test_an_edgekit_bug_is_not_answered_by_the_fallback(int8_path, fp32_path, digits):
    model = EdgeModel.load(int8_path, fallback=fp32_path)
    slot = model.runner._free.get()
    slot.session.raw.interp = _BuggyInterpreter(slot.session.raw.interp)  # the real interpreter inside the engine session
    model.runner._free.put(slot)
    with pytest.raises(TypeError, match="a bug"):
        model.predict(digits.x_test[0])


def test_failed_allocate_after_resize_leaves_the_slot_usable(tiny_models):
    model = EdgeModel.load(tiny_models["batch_one"], policy=Policy(probe=False))
    x = np.array([[1, 2, 3, 4]], np.float32)
    assert model.predict(x).output.tolist() == [[2, 4, 6, 8]]
    with pytest.raises(InferenceError):
        model.predict(np.ones((2, 4), np.float32))  # resize accepted, allocate_tensors fails
    assert model.predict(x).output.tolist() == [[2, 4, 6, 8]]  # the interpreter is back at batch 1
    slot = model.runner._free.get()
    assert slot.shape == ((1, 4),)
    model.runner._free.put(slot)


# ---- 10. edgekit run --normalize for published models ------------------------------------------
def test_run_normalize_lets_a_published_model_take_a_photo(int8_path, digits, tmp_path, capsys):
    published = tmp_path / "published.tflite"
    shutil.copy(int8_path, published)  # no manifest next to it
    Image.fromarray(np.round(digits.x_test[0, :, :, 0] * 255).astype(np.uint8)).resize((32, 32)).save(
        tmp_path / "photo.png")
    assert main(["run", str(published), str(tmp_path / "photo.png")]) == 2
    assert "--normalize" in capsys.readouterr().err
    code = main(["run", str(published), str(tmp_path / "photo.png"), "--normalize", "0-1", "--json"])
    rec = json.loads(capsys.readouterr().out.splitlines()[0])
    with_manifest = EdgeModel.load(int8_path).predict(tmp_path / "photo.png")
    assert rec["top_k"][0][0][0] == str(with_manifest.top_k(1)[0][0]) and code in (0, 1)
    assert main(["run", str(published), str(tmp_path / "photo.png"), "--normalize", "bogus"]) == 2


# ---- 5. the incident log is bounded -------------------------------------------------------------
@pytest.mark.slow
def test_incident_flood_stays_under_the_cap_and_counts_what_it_dropped(tmp_path):
    from edgekit.runtime.incidents import IncidentLog

    path = tmp_path / "incidents.jsonl"
    cap, backups = 200_000, 2
    log = IncidentLog(path, log_inputs=True, max_bytes=cap, backups=backups, max_values=8)
    x = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8, 1)
    for i in range(100_000):
        log.add("ood", f"ood storm {i}", "allow", "abc", x=x, samples=[0])
    log.close()
    files = [path] + [path.with_name(f"{path.name}.{i}") for i in range(1, backups + 1)]
    assert all(f.exists() for f in files) and not path.with_name(f"{path.name}.{backups + 1}").exists()
    assert sum(f.stat().st_size for f in files) <= cap * (backups + 1)
    kept = sum(len(f.read_text().splitlines()) for f in files)
    status = log.status()
    assert status["rotations"] > 0 and status["dropped_records"] + kept == 100_000
    last = json.loads(path.read_text().splitlines()[-1])
    assert last["reason"] == "ood storm 99999" and len(last["input"]["values"]) == 8
    assert last["input"]["values_dropped"] == 56 and status["dropped_values"] == 56 * 100_000


def test_policy_bounds_reach_the_models_incident_log(int8_path, tmp_path):
    model = EdgeModel.load(int8_path, incident_log=tmp_path / "i.jsonl",
                           policy=Policy(incident_log_max_bytes=10_000, incident_log_backups=1))
    for _ in range(200):
        model.predict(np.full((8, 8, 1), 3.0, np.float32))  # out of range: an incident each
    status = model.health()["incident_log"]
    assert status["max_bytes"] == 10_000 and status["rotations"] > 0 and status["dropped_records"] > 0
    assert (tmp_path / "i.jsonl").stat().st_size <= 10_000


# ---- 11. no warnings on the bad-input paths ------------------------------------------------------
@pytest.mark.parametrize("log_inputs", [False, True])
def test_bad_inputs_raise_without_any_warning(int8_path, log_inputs):
    model = EdgeModel.load(int8_path, policy=Policy(log_inputs=log_inputs))
    bad = [np.full((8, 8, 1), 1 + 2j), [[[1 + 2j]] * 8] * 8, np.full((8, 8, 1), None, object),
           np.full((8, 8, 1), "a"), np.full((8, 8, 1), True), np.full((8, 8, 1), 1e300),
           np.full((8, 8, 1), np.nan, np.float64), np.array([1 + 1j]), np.datetime64("2024-01-01")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x in bad:
            with pytest.raises(InputValidationError):
                model.predict(x)


# ---- issue 15, item 10: inputs ------------------------------------------------------------------
_PEAK_SCRIPT = """
import sys
import numpy as np, psutil
from edgekit.errors import InputValidationError
from edgekit.runtime import EdgeModel

def peak_kb():  # the kernel's high-water mark of this process's RSS
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1])

model = EdgeModel.load(sys.argv[1])
model.predict(np.zeros((8, 8, 1), np.float32))  # warm: the first call's own allocations are not counted
x = np.broadcast_to(np.array(np.nan, dtype=sys.argv[2]), (10**9, 8, 8, 1))  # 64e9 values, no memory
rss, peak = psutil.Process().memory_info().rss, peak_kb()
try:
    model.predict(x)
except InputValidationError as err:
    print("refused:", err)
print("grew_kb", max(psutil.Process().memory_info().rss - rss, 0) // 1024, peak_kb() - peak)
print("summary", model.incidents()[-1]["input"])
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_huge_zero_stride_view_is_refused_without_memory(int8_path, dtype):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(int8_path), dtype], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "refused: input batch of 1,000,000,000 samples" in res.stdout, res.stderr[-2000:]
    rss_kb, peak_kb = (int(v) for v in res.stdout.split("grew_kb ")[1].split()[:2])
    assert rss_kb < 4096 and peak_kb < 4096, res.stdout  # a few MB at most, never the array
    assert "'summarized_values': 65536" in res.stdout and "'nonfinite': 65536" in res.stdout


def test_a_masked_array_cannot_hide_a_nan_from_the_guard(int8_path, digits):
    x = np.ma.MaskedArray(digits.x_test[:4].astype(np.float32))
    x.data[1, 3, 3, 0] = np.nan
    x[1, 3, 3, 0] = np.ma.masked  # the NaN is under the mask: np.isfinite(x).all() is True
    assert bool(np.isfinite(x).all())
    with EdgeModel.load(int8_path) as model, pytest.raises(InputValidationError, match="masked array"):
        model.predict(x)


def test_a_lone_surrogate_label_is_a_one_line_error_not_a_traceback(int8_path, digits, tmp_path):
    import subprocess
    import sys

    model = tmp_path / int8_path.name
    shutil.copy(int8_path, model)
    manifest_name = int8_path.stem + ".manifest.json"
    man = json.loads(int8_path.with_name(manifest_name).read_text())
    man["labels"] = ["\ud800"] + [str(i) for i in range(1, 10)]
    (tmp_path / manifest_name).write_text(json.dumps(man))  # ensure_ascii: the file holds the "\ud800" escape
    sample = tmp_path / "x.npy"
    np.save(sample, digits.x_test[0])
    res = subprocess.run([sys.executable, "-c", "import sys; from edgekit.cli import main; sys.exit(main())",
                          "run", str(model), str(sample)], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "labels[0]" in res.stderr, res.stderr
