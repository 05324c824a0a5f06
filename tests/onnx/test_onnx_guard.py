"""The guard's other features on an ONNX model: the session pool under threads, shadow against the .tflite
of the same source, the crash probe's cached verdict, and the one-line error without onnxruntime."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edgekit.runtime import EdgeModel

ROOT = Path(__file__).resolve().parents[2]


def test_pool_of_onnx_sessions_under_threads(digits_onnx, digits):
    model = EdgeModel.load(digits_onnx, pool_size=2, num_threads=1)
    expected = model.predict(digits.x_test[:40]).output.argmax(1)

    def one(i: int) -> int:
        return int(model.predict(digits.x_test[i]).output.argmax())

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(one, list(range(40)) * 3))
    assert got == expected.tolist() * 3


def test_the_bound_one_input_call_equals_the_plain_run(digits_onnx, digits):
    """run1's I/O binding (the input bound in place on each call, outputs allocated by ONNX Runtime) gives
    what InferenceSession.run gives, call after call: a binding that copied the input at bind time or kept
    a stale one would repeat an earlier answer; a non-contiguous input is bound as run() takes it."""
    from edgekit.engine.onnxrt import open_onnx

    s = open_onnx(digits_onnx, threads=1)
    assert s._bound is not None  # this onnxruntime has the binding: the path under test runs
    name = s.inputs[0].name
    xs = digits.x_test[:12].astype(np.float32)
    answers = []
    for x in list(xs) + [np.asfortranarray(np.repeat(xs[:1], 2, axis=0))[:1]]:
        batch = np.ascontiguousarray(x[None]) if x.ndim == 3 else x
        got = s.run1(batch)
        want = s.sess.run(None, {name: np.ascontiguousarray(batch)})
        assert len(got) == len(want) and all(np.array_equal(g, w) for g, w in zip(got, want))
        answers.append((got, [w.copy() for w in want]))
    for got, want in answers:  # fresh arrays: later calls did not change them
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert len({a[0][0].tobytes() for a in answers}) > 5  # the inputs gave different answers


def test_shadow_onnx_against_tflite_of_the_same_source(digits_onnx, digits_models, digits):
    model = EdgeModel.load(digits_onnx, shadow=1.0, reference=digits_models("fp32"))
    for i in range(0, 60, 20):
        model.predict(digits.x_test[i:i + 20])
    snap = model.health(wait_for_shadow=True)["shadow"]
    assert snap["compared"] == 60 and snap["errors"] == 0 and snap["disagreed"] == 0


def test_probe_verdict_cached_on_disk_for_onnx(digits_onnx, tmp_path, monkeypatch):
    from edgekit.engine import open_model

    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path))
    open_model(digits_onnx, threads=2)  # a thread count no other test asks for: a fresh verdict
    verdicts = [p.read_text() for p in (tmp_path / "verified").iterdir()]
    assert verdicts == ["ok"]


def test_without_onnxruntime_one_line_naming_the_extra(digits_onnx):
    # a real process where `import onnxruntime` fails, as on armv7l or a runtime-only install
    code = ("import sys; sys.modules['onnxruntime'] = None\n"
            "from edgekit.errors import EdgekitError\n"
            "from edgekit.runtime import EdgeModel\n"
            "try:\n    EdgeModel.load(sys.argv[1])\n"
            "except EdgekitError as err:\n    print(type(err).__name__, err)\n")
    done = subprocess.run([sys.executable, "-c", code, str(digits_onnx)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.stdout.strip().splitlines() == [
        "MissingDependencyError ONNX Runtime is not installed; pip install edgekit[onnx] (ONNX Runtime has "
        "wheels for Python 3.11+ on x86_64 and aarch64 only)"], done.stderr
