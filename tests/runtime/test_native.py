"""The guard kernel (issue 20): guard_kernel.c, built per machine by native.py, gives the numpy plan's
scores and the general path's verdicts; where it cannot be built the guard keeps numpy and says why.

The numpy plan (check_plan.OODPlan) is the reference: these tests hold the kernel to it on the same
clean, shifted, noisy, constant and transposed samples, and on the inputs it must hand back (NaN, Inf,
out of bounds, another shape, another dtype, a strided view).
"""

from __future__ import annotations

import shutil
import subprocess
import threading

import numpy as np
import pytest

from edgekit.calibration_stats import compute_input_stats
from edgekit.errors import InputValidationError
from edgekit.runtime import native
from edgekit.runtime.check_plan import NativePlan, OODPlan
from edgekit.runtime.checks import CLEAN_OUTPUT, InputGuard, OutputChecks, OutputGuard
from edgekit.runtime.policy import Policy
from test_check_plan import _cases, _smooth_images


@pytest.fixture
def fresh_kernel(tmp_path, monkeypatch):
    """native.py reads the environment again, with its cache in tmp_path."""
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path))
    native._reset()
    yield tmp_path / "native"
    native._reset()


def test_the_kernel_builds_on_this_machine():
    # this machine has a C compiler (gcc): a None here is a build or load failure, not a missing tool
    assert native.kernel() is not None, native.why_not()
    assert native.why_not() is None


@pytest.mark.parametrize("shape", [(8, 8, 1), (32, 32, 3), (64, 48, 3), (96, 96, 3), (16,)])
def test_the_kernel_scores_as_the_numpy_plan(shape):
    calib = _smooth_images(120, shape, seed=0) if len(shape) == 3 else (
        np.random.default_rng(0).normal(size=(200,) + shape).astype(np.float32))
    guard = InputGuard(shape, compute_input_stats(calib), None, Policy())
    plan, fast = guard._plan, guard._native_plan
    assert isinstance(plan, OODPlan) and isinstance(fast, NativePlan) and guard._native is fast.fn
    cases = _cases(calib) if len(shape) == 3 else [np.ascontiguousarray(c[None]) for c in calib[:8]]
    scored = 0
    for x in cases:
        got = fast(x)
        lo, hi = float(x.min()), float(x.max())
        if lo < guard._lo_bound or hi > guard._hi_bound:
            assert got == -1.0  # out of bounds: the caller's exact checks
            continue
        assert got == pytest.approx(plan(x, lo, hi), rel=1e-4, abs=1e-5)
        assert (fast.struct.lo, fast.struct.hi) == (lo, hi)
        scored += 1
    assert scored >= 5


def test_the_kernel_hands_back_what_it_does_not_decide():
    calib = _smooth_images(60, (32, 32, 3), seed=3)
    guard = InputGuard((32, 32, 3), compute_input_stats(calib), None, Policy())
    fast, x = guard._native, np.ascontiguousarray(calib[:1])
    assert fast(x) >= 0.0
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[0, 31, 31, 2] = bad  # the last value: no pass may stop early
        assert fast(y) == -1.0
    assert fast(x * 10) == -1.0  # out of bounds
    assert fast(x[:, :16]) == -2.0  # another size
    assert fast(x.astype(np.float64)) == -2.0  # another dtype
    assert fast(np.asfortranarray(np.zeros((1, 32, 32, 3), np.float32))) == -2.0  # not C-contiguous
    assert fast(x.tolist()) == -2.0  # not a buffer at all
    assert fast(x) >= 0.0  # and nothing stuck from those


@pytest.mark.parametrize("ood", [True, False])
def test_the_guard_gives_the_same_verdicts_with_and_without_the_kernel(ood):
    calib = _smooth_images(120, (32, 32, 3), seed=1)
    stats = compute_input_stats(calib)
    policy = Policy() if ood else Policy(ood_threshold=None)
    quant = (1 / 128, 0, "int8")  # the int8 range [-1, 1): clip shares are computed too
    with_kernel = InputGuard((32, 32, 3), stats, quant, policy)
    numpy_only = InputGuard((32, 32, 3), stats, quant, policy)
    numpy_only._native = None
    assert with_kernel._native is not None
    flagged = 0
    for x in _cases(calib) + [np.ascontiguousarray(calib[:1]) * 1.5]:
        a, b = with_kernel(x), numpy_only(x)
        assert (a.flagged is None) == (b.flagged is None)
        assert a.in_qrange == b.in_qrange
        assert (a.ood is None) == (b.ood is None) == (not ood)
        if ood:
            assert float(a.ood[0]) == pytest.approx(float(b.ood[0]), rel=1e-4, abs=1e-5)
        for name in ("range_share", "clip_share"):
            va, vb = getattr(a, name), getattr(b, name)
            assert (va is None and vb is None) or np.array_equal(va, vb)
        flagged += a.flagged is not None
    assert flagged >= (4 if ood else 1)
    x = np.ascontiguousarray(calib[:1])
    x[0, 5, 5, 0] = np.nan
    with pytest.raises(InputValidationError, match="NaN or Inf"):
        with_kernel(x)


def test_threads_share_one_guard_and_get_the_numpy_scores():
    calib = _smooth_images(80, (64, 48, 3), seed=4)
    guard = InputGuard((64, 48, 3), compute_input_stats(calib), None, Policy())
    xs = _cases(calib)
    want = [float(guard._general(x).ood[0]) for x in xs]
    errors = []

    def work():
        for _ in range(30):
            for x, w in zip(xs, want):
                got = float(guard(x).ood[0])
                if abs(got - w) > 1e-4 * max(1.0, abs(w)):
                    errors.append((got, w))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_output_checks_on_the_kernel_sum():
    guard = OutputGuard(False, True, 0.0, Policy())
    assert guard._native_sum is not None
    rng = np.random.default_rng(0)
    out = rng.normal(size=(1, 896, 16)).astype(np.float32)
    assert guard(out) is CLEAN_OUTPUT
    assert guard._sum1(out) == pytest.approx(float(out.astype(np.float64).sum()), rel=1e-9)
    # finite values whose float32 sum overflows: the double sum stays finite, no exact scan needed
    assert guard(np.full((1, 100), 3e38, np.float32)) is CLEAN_OUTPUT
    for bad in (np.nan, np.inf):
        y = out.copy()
        y[0, -1, -1] = bad
        assert guard(y).nonfinite.tolist() == [True]
    strided = np.concatenate([out, out], axis=2)[:, :, ::2]
    assert guard(strided).flagged is None  # not contiguous: the exact path, same verdict
    assert guard(out.astype(np.float64)) is CLEAN_OUTPUT  # another dtype: the dot product
    probs = OutputGuard(True, True, 0.0, Policy(min_confidence=None))
    p = np.full((1, 10), 0.1, np.float32)
    assert probs(p) is CLEAN_OUTPUT
    assert probs(p * 2).bad_sum.tolist() == [True]


def test_several_float_outputs_are_checked_in_one_loop_of_sums():
    checks = OutputChecks(["boxes", "scores"], [OutputGuard(False, True, 0.0, Policy()) for _ in range(2)])
    assert checks._sum is not None
    rng = np.random.default_rng(1)
    boxes, scores = rng.normal(size=(1, 896, 16)).astype(np.float32), rng.normal(size=(1, 896, 1)).astype(np.float32)
    clean = checks([boxes, scores])
    assert clean.flagged is None and [p.flagged for p in clean.parts] == [None, None]
    bad = scores.copy()
    bad[0, 3, 0] = np.inf
    v = checks([boxes, bad])
    assert v.flagged.tolist() == [True] and v.parts[0].flagged is None and v.parts[1].nonfinite.tolist() == [True]
    assert checks([boxes.astype(np.float64), scores]).flagged is None  # another dtype: checked one by one
    assert checks([boxes, scores]) is clean  # the shared clean verdict again, untouched


def test_without_a_compiler_the_guard_keeps_numpy_and_says_why(fresh_kernel, monkeypatch, tmp_path):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no cc, gcc or clang on it
    assert native.kernel() is None and native.why_not() == "no C compiler (cc) on this machine"
    monkeypatch.undo()
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(fresh_kernel.parent))
    native._reset()
    monkeypatch.setenv("CC", shutil.which("false"))  # a compiler that fails
    assert native.kernel() is None
    assert native.why_not().startswith("kernel build failed")
    assert list(fresh_kernel.glob("*.failed"))  # remembered: not retried on every load
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    native._reset()
    assert native.kernel() is None and calls == []
    monkeypatch.setenv("CC", "/nonexistent/cc")
    native._reset()
    assert native.kernel() is None and native.why_not().startswith("kernel build failed")
    calib = _smooth_images(40, (8, 8, 1), seed=5)
    guard = InputGuard((8, 8, 1), compute_input_stats(calib), None, Policy())
    assert guard._native is None and guard._plan is not None
    assert float(guard(np.ascontiguousarray(calib[:1])).ood[0]) >= 0.0
    assert OutputGuard(False, True, 0.0, Policy())._native_sum is None


def test_health_says_how_the_checks_run(int8_path, fresh_kernel, monkeypatch):
    from edgekit.runtime import EdgeModel

    monkeypatch.setenv("EDGEKIT_NATIVE", "0")
    model = EdgeModel.load(int8_path)
    assert model.health()["guard_kernel"] == "numpy (EDGEKIT_NATIVE=0)"
    assert model.input_guard._native is None
    assert model.predict(np.zeros((8, 8, 1), np.float32)).outputs[0].shape == (1, 10)


def test_the_kernel_is_built_once_per_machine_and_can_be_turned_off(fresh_kernel, monkeypatch):
    assert native.kernel() is not None, native.why_not()
    built = list(fresh_kernel.glob("*.so"))
    assert len(built) == 1
    native._reset()
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("compiled again"))
    assert native.kernel() is not None  # from the cache
    monkeypatch.setenv("EDGEKIT_NATIVE", "0")
    native._reset()
    assert native.kernel() is None and native.why_not() == "EDGEKIT_NATIVE=0"


def test_a_compiler_without_march_native_still_builds_the_kernel(fresh_kernel, tmp_path, monkeypatch):
    cc = tmp_path / "old-cc"
    cc.write_text('#!/bin/sh\nfor a in "$@"; do [ "$a" = "-march=native" ] && { echo "bad -march" >&2; exit 1; }; done\n'
                  f'exec {shutil.which("cc")} "$@"\n')
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    assert native.kernel() is not None, native.why_not()
    calib = _smooth_images(60, (32, 32, 3), seed=6)
    guard = InputGuard((32, 32, 3), compute_input_stats(calib), None, Policy())
    x = np.ascontiguousarray(calib[:1])
    assert guard._native(x) == pytest.approx(guard._plan(x, float(x.min()), float(x.max())), rel=1e-4)


def test_a_kernel_file_others_can_write_is_not_loaded(fresh_kernel):
    assert native.kernel() is not None, native.why_not()
    (built,) = fresh_kernel.glob("*.so")
    built.chmod(0o666)  # anyone could have replaced it: never load it into this process
    native._reset()
    assert native.kernel() is None and "writable by others" in native.why_not()


def test_a_new_build_keeps_the_newest_builds_only(fresh_kernel):
    import os
    import platform

    fresh_kernel.mkdir(parents=True)
    machine = platform.machine()
    old = [fresh_kernel / f"guard-{machine}-old{i}.so" for i in range(6)]
    for i, f in enumerate(old):  # six builds of older sources, oldest first
        f.write_bytes(b"old")
        os.utime(f, ns=(10**18 + i * 10**9, 10**18 + i * 10**9))
    other = fresh_kernel / "guard-riscv64-old.so"  # another machine's build (a shared home folder)
    other.write_bytes(b"old")
    os.utime(other, ns=(10**18, 10**18))
    assert native.kernel() is not None, native.why_not()
    left = sorted(p.name for p in fresh_kernel.glob(f"guard-{machine}-*.so"))
    assert len(left) == native.KEEP_BUILDS and not any(p.exists() for p in old[:3])
    assert all(p.exists() for p in old[3:]) and other.exists()
