"""The compiled one-sample check plan (issue 20) gives the general path's verdicts, and load-time facts are
remembered per model file.

The plan scores with a handful of numpy calls on preallocated buffers; these tests hold it to the
general scorer (calibration_stats.OODScorer) on clean, shifted, noisy, constant, transposed and
non-finite samples, for an unpooled input and pooled images of three layouts.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.calibration_stats import OODScorer, compute_input_stats
from edgekit.errors import InputValidationError
from edgekit.runtime.check_plan import OODPlan
from edgekit.runtime.checks import InputGuard
from edgekit.runtime.policy import Policy


def _smooth_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Image-like samples: smooth gradients plus a little noise, per channel offsets (colour)."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.empty((n,) + shape, np.float32)
    for i in range(n):
        a, b = rng.uniform(-1, 1, 2)
        base = a * yy + b * xx
        for ch in range(c):
            out[i, ..., ch] = base * rng.uniform(0.5, 1) + rng.uniform(-0.3, 0.3) + rng.normal(0, 0.05, (h, w))
    return np.clip(out, -1, 1)


def _cases(calib: np.ndarray) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    x = calib[0]
    cases = [calib[i] for i in range(5)]
    cases += [x * 3 + 1, x * 0.01, np.zeros_like(x), rng.normal(size=x.shape).astype(np.float32),
              np.ascontiguousarray(x[::-1]), (x + 1) / 2]
    if x.ndim == 3:
        cases.append(np.ascontiguousarray(x.transpose(2, 0, 1)).reshape(x.shape))  # NCHW read as NHWC
    return [np.ascontiguousarray(c[None], np.float32) for c in cases]


@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3), (64, 48, 3), (96, 96, 3)])
def test_the_plan_scores_as_the_general_scorer(shape):
    calib = _smooth_images(120, shape, seed=0)
    ref = compute_input_stats(calib).ood
    scorer = OODScorer(ref)
    plan = OODPlan.build(scorer, shape)
    assert plan is not None
    for x in _cases(calib):
        want = float(scorer(x)[0])
        got = plan(x, float(x.min()), float(x.max()))
        assert got == pytest.approx(want, rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3), (96, 96, 3)])
def test_the_guard_on_the_plan_gives_the_general_verdicts(shape):
    calib = _smooth_images(120, shape, seed=1)
    guard = InputGuard(shape, compute_input_stats(calib), None, Policy())
    assert guard._plan is not None
    flagged = 0
    for x in _cases(calib):
        fast, general = guard(x), guard._general(x)
        assert (fast.flagged is None) == (general.flagged is None)
        assert float(fast.ood[0]) == pytest.approx(float(general.ood[0]), rel=1e-4, abs=1e-5)
        flagged += fast.flagged is not None
    assert flagged >= 4  # shifted, constant, noise, rescaled: the cases are not all clean
    for bad in (np.nan, np.inf, -np.inf):
        x = np.ascontiguousarray(calib[:1])
        x.reshape(-1)[len(x.reshape(-1)) // 2] = bad
        with pytest.raises(InputValidationError, match="NaN or Inf"):
            guard(x)


def test_shapes_the_plan_does_not_compile_keep_the_general_path():
    calib = _smooth_images(60, (17, 17, 3), seed=2)  # 17 rows pool in 2s with padding: not compiled
    guard = InputGuard((17, 17, 3), compute_input_stats(calib), None, Policy())
    assert guard._plan is None
    x = np.ascontiguousarray(calib[:1])
    assert float(guard(x).ood[0]) == pytest.approx(float(OODScorer(compute_input_stats(calib).ood)(x)[0]))


def test_the_structure_walk_runs_once_per_model_file(tmp_path, monkeypatch, int8_path):
    from edgekit.engine import safeload

    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path))
    data = int8_path.read_bytes()
    safeload._memory.clear()  # remembered by earlier tests in this process: walk it here, into tmp_path
    first = safeload._checked_structure(data, "m.tflite")
    walks = []
    monkeypatch.setattr(safeload, "check_structure", lambda d, label: walks.append(label))
    safeload._memory.clear()
    again = safeload._checked_structure(data, "m.tflite")  # from the file beside the verdicts
    assert walks == [] and again.arena_bytes == first.arena_bytes
    changed = data[:-1] + bytes([data[-1] ^ 1])  # other bytes: walked again
    safeload._checked_structure(changed, "m.tflite")
    assert walks == ["m.tflite"]


def test_load_runs_the_model_once_and_decides_overlap_from_that_run(int8_path, monkeypatch):
    """Nothing waits for the first call, and the load adds no model run of its own (issue 20 item 2)."""
    from edgekit.engine.tflite import TFLiteSession
    from edgekit.runtime import EdgeModel

    runs = []
    real = TFLiteSession.run
    monkeypatch.setattr(TFLiteSession, "run", lambda self, feeds: runs.append(1) or real(self, feeds))
    with EdgeModel.load(int8_path, overlap=None) as model:
        assert model.runner.first_run_ms is not None and model.runner.first_run_ms > 0
        assert runs == []  # the run on zeros happened inside the engine's open, and was timed there
        assert model.predict(np.zeros((8, 8, 1), np.float32)).outputs[0].shape == (1, 10)


def test_overlap_is_not_timed_when_the_first_run_is_too_short_to_hide_checks_worth_moving(int8_path, monkeypatch):
    """Checks go to a helper only when they take 60 us and the invoke 10x that: a first run under 0.6 ms
    decides it without timing the checks (a load cost on every small model); a longer one still times them."""
    from edgekit.runtime import EdgeModel
    from edgekit.runtime import model as model_module
    from edgekit.runtime.interpreter_pool import Runner

    timed = []
    real_timed = model_module._timed
    monkeypatch.setattr(model_module, "_timed", lambda fn, arg: timed.append(fn) or real_timed(fn, arg))
    monkeypatch.setattr(model_module.os, "cpu_count", lambda: 4)
    with EdgeModel.load(int8_path, overlap=None) as model:
        assert model.runner.first_run_ms < 0.6 and model._overlap is None and timed == []
    real_init = Runner.__init__

    def slow_first_run(self, *a, **k):
        real_init(self, *a, **k)
        self.first_run_ms = 5.0  # as a 5 ms model's first run would be

    monkeypatch.setattr(Runner, "__init__", slow_first_run)
    with EdgeModel.load(int8_path, overlap=None) as model:
        assert len(timed) == 2 and model._overlap is None  # timed, and the digits checks are too short to move
