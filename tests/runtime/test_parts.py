"""The runtime's parts on their own, without a model: policy, incident log, checks, monitor, shadow."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from edgekit.errors import InputValidationError, ModelLoadError, UsageError
from edgekit.runtime.checks import InputGuard, OutputGuard
from edgekit.runtime.incidents import IncidentLog
from edgekit.runtime.monitor import Monitor, Shadow
from edgekit.runtime.policy import KINDS, Policy
from edgekit.engine.safeload import check_structure
from edgekit.calibration_stats import compute_input_stats


def test_policy_defaults_and_validation():
    p = Policy()
    assert [p.action(k) for k in KINDS] == ["fallback", "fallback", "raise", "allow", "fallback", "allow"]
    assert all(Policy.strict().action(k) == "raise" for k in KINDS)
    with pytest.raises(UsageError, match="needs Policy\\(default=...\\)"):
        Policy(on_ood="default")
    with pytest.raises(UsageError, match="on_latency='fallback'"):
        Policy(on_latency="fallback")
    with pytest.raises(UsageError):
        Policy(max_batch=0)


def test_incident_log_jsonl_without_raw_input(tmp_path):
    path = tmp_path / "logs" / "incidents.jsonl"
    log = IncidentLog(path)
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    log.add("ood", "ood 3.0 (limit 1.00)", "fallback", "abc", x=x, samples=[0, 1])
    log.add("latency", "slow", "allow", "abc")
    lines = [json.loads(ln) for ln in path.read_text().splitlines()]
    assert [r["kind"] for r in lines] == ["ood", "latency"]
    rec = lines[0]
    assert rec["input"] == {"shape": [2, 4], "dtype": "float32", "nonfinite": 0, "min": 0.0, "max": 7.0, "mean": 3.5}
    assert "values" not in rec["input"] and rec["model_sha256"] == "abc" and rec["time"].endswith("Z")
    assert log.counts() == {"ood": 1, "latency": 1}
    with_values = IncidentLog(None, log_inputs=True).add("ood", "r", "allow", None, x=x)
    assert with_values["input"]["values"] == x.tolist()


@pytest.fixture(scope="module")
def uniform_stats():
    calib = np.random.default_rng(0).uniform(0, 1, (400, 6, 6, 1)).astype(np.float32)
    return compute_input_stats(calib)


def test_input_guard_flags_range_clip_ood_and_refuses_nan(uniform_stats):
    guard = InputGuard((6, 6, 1), uniform_stats, (1 / 255, -128, "int8"), Policy())
    rng = np.random.default_rng(1)
    clean = rng.uniform(0, 1, (20, 6, 6, 1)).astype(np.float32)
    v = guard(clean)
    assert v.flagged is None and v.in_qrange
    wild = clean.copy()
    wild[3, 0, 0, 0] = 5.0  # out of range, and clipped by int8 (1/36 of values = 2.8% > 1%)
    v = guard(wild)
    assert v.flagged.tolist() == [i == 3 for i in range(20)]
    assert v.range_share[3] == pytest.approx(1 / 36) and v.clip_share[3] == pytest.approx(1 / 36)
    names = {c.name: c.ok for c in v.checks(20)}
    assert names["range"] is False and names["int8_clip"] is False
    for bad in (np.nan, np.inf, -np.inf):
        x = clean.copy()
        x[7, 1, 1, 0] = bad
        with pytest.raises(InputValidationError, match="NaN or Inf in 1 of 20 sample\\(s\\) \\(first: 7\\)"):
            guard(x)


def test_input_guard_without_statistics_still_refuses_inf():
    guard = InputGuard((4,), None, None, Policy())
    assert guard(np.full((2, 4), 1e30, np.float32)).flagged is None
    with pytest.raises(InputValidationError):
        guard(np.array([[0, 0, np.inf, 0]], np.float32))


def test_output_guard_distribution_and_confidence():
    guard = OutputGuard(True, True, 0.0, Policy(min_confidence=0.5))
    good = np.array([[0.9, 0.1], [0.6, 0.4]], np.float32)
    assert guard(good).flagged is None
    bad = np.array([[0.9, 0.1], [0.5, 0.9], [0.45, 0.55], [np.nan, 0.5]], np.float32)
    v = guard(bad)
    assert v.bad_sum.tolist() == [False, True, False, True]
    assert v.low_conf is None  # a NaN row is not "low confidence": it is reported as non-finite
    assert v.flagged.tolist()[:2] == [False, True] and v.nonfinite.tolist() == [False, False, False, True]
    low = guard(np.array([[0.3, 0.3, 0.4]], np.float32))
    assert low.low_conf.tolist() == [True]



def test_output_guard_one_sample_fast_paths_agree_with_the_exact_checks():
    """The one-sample paths prove a sum (probabilities) or finiteness (other float outputs) with one dot
    product with ones; large finite values must not be flagged, nor warned about."""
    probs = OutputGuard(True, True, 0.0, Policy())
    assert probs(np.array([[0.7, 0.2, 0.1]], np.float32)).flagged is None
    assert probs(np.array([[0.7, 0.2, 0.3]], np.float32)).flagged.tolist() == [True]
    assert probs(np.array([[0.5, 0.5]], np.float32)).flagged is None  # another size: a new ones vector
    assert probs(np.array([[np.nan, 1.0]], np.float32)).nonfinite.tolist() == [True]
    boxes = OutputGuard(False, True, 0.0, Policy())
    assert boxes(np.zeros((1, 896, 16), np.float32)).flagged is None
    huge = np.full((1, 8), 3e19, np.float32)  # finite; its squares would overflow float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy 2 warns on an overflowing dot product
        assert boxes(huge).flagged is None
    with np.errstate(over="ignore"):  # past float32's range the sum overflows: the exact scan decides
        assert boxes(np.full((1, 8), 1e38, np.float32)).flagged is None
    for bad in (np.nan, np.inf, -np.inf):
        x = np.zeros((1, 896, 16), np.float32)
        x[0, 500, 3] = bad
        assert boxes(x).flagged.tolist() == [True], bad


def test_quantizer_clips_and_gives_nan_a_defined_code_without_a_warning():
    from edgekit.quant import Quantizer

    q = Quantizer(1 / 255, -128, "int8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns on a NaN -> int cast; the quantizer must not cast NaN
        codes = q(np.array([0.0, 1.0, 2.0, -1.0, np.nan, np.inf, -np.inf], np.float32))
    assert codes.tolist() == [-128, 127, 127, -128, 127, 127, -128]
    assert q(np.array([0.5], np.float32), in_range=True).tolist() == [0]

def test_monitor_psi_stable_then_drifted(uniform_stats):
    mon = Monitor([("image", uniform_stats, (6, 6, 1), None)], [("scores", 3, None)], window=200,
                  labels=["a", "b", "c"])
    rng = np.random.default_rng(2)
    for _ in range(200):
        mon.record([rng.uniform(0, 1, (1, 6, 6, 1)).astype(np.float32)], [np.array([[0.7, 0.2, 0.1]])], None, None,
                   1.0)
    snap = mon.snapshot()
    assert snap["samples"] == 200 and snap["input"]["drift"] == "stable"
    assert snap["inputs"]["image"] == snap["input"] and snap["outputs"]["scores"]["top1_share"] == {"a": 1.0}
    mon.record([rng.uniform(0.6, 1, (200, 6, 6, 1)).astype(np.float32)], None, None, None, 1.0)  # a batch
    snap = mon.snapshot()
    assert snap["samples"] == 400 and snap["input"]["drift"] == "drifted" and snap["input"]["psi_max"] > 0.25



def test_monitor_sampling_of_large_inputs_does_not_alias_with_a_periodic_stream():
    """Two cameras taking turns on one model (period 2): the monitor keeps large inputs from every
    stride-th call on average, and both cameras must reach its statistics (a fixed even stride kept one)."""
    shape = (128, 128, 3)
    mon = Monitor([("x", None, shape, None)], window=500)
    assert mon.stride == 8
    cams = [np.full((1,) + shape, 0.2, np.float32), np.full((1,) + shape, 0.8, np.float32)]
    for call in range(800):
        mon.record([cams[call % 2]], None, None, None, 1.0)
    kept = mon.snapshot()["inputs"]["x"]
    assert 90 <= mon.kept <= 110  # one call in 8 on average
    assert 0.4 < kept["channels"][0]["mean"] < 0.6  # both cameras, about evenly; one camera alone reads 0.2

@pytest.mark.parametrize("shape", [(6, 6, 1), (40, 40, 3), (-1,), (300,)])
def test_monitor_keeps_the_same_values_from_one_sample_as_from_a_batch(shape):
    """record's one-sample path (its own stores, the hot path) keeps what the batch path keeps, for fixed
    and dynamic sizes (a dynamic input keeps its first value per channel) and with float64 outputs."""
    fixed = tuple(d if d > 0 else 576 for d in shape)
    rng = np.random.default_rng(4)
    x = rng.uniform(0, 1, (1,) + fixed).astype(np.float32)
    y = rng.uniform(0, 1, (1, 5))  # float64: kept as float32
    one, batch = (Monitor([("x", None, shape, None)], [("y", 5, None)], window=4) for _ in range(2))
    one.record([x], [y], 0.25, None, 1.0)
    batch.record([np.concatenate([x, x])], [np.concatenate([y, y])], np.array([0.25, 0.25]), None, 1.0)
    a, b = one.inputs[0]._x[0], batch.inputs[0]._x[0]
    assert type(a) is bytes and a == b  # a copy (the caller may reuse its array), float32
    ring = one.inputs[0]
    want = x.reshape(-1, ring.channels)[ring._pos] if shape != (-1,) else x.reshape(-1, ring.channels)[:1]
    assert np.array_equal(np.frombuffer(a, np.float32), want.ravel())
    ya, yb = one.outputs[0]._out[0], batch.outputs[0]._out[0]
    assert ya == yb and np.array_equal(np.frombuffer(ya, np.float32), y[0].astype(np.float32))


def test_shadow_counts_disagreements_off_thread():
    rolled = Shadow(lambda b: np.roll(b, 1, axis=1), 0.5, classifier=True)
    same = Shadow(lambda b: b * 2, 1.0, classifier=True)
    for i in range(20):
        out = np.eye(4, dtype=np.float32)[[i % 4]]
        rolled.offer(out, out)
        same.offer(out, out)
    r, s = rolled.snapshot(wait=True), same.snapshot(wait=True)
    assert r["compared"] == 10 and r["disagreement_rate"] == 1.0
    assert s["compared"] == 20 and s["disagreement_rate"] == 0.0
    rolled.close()
    same.close()


@pytest.mark.parametrize("data, words", [
    (b"", "too small"),
    (b"\x10\0\0\0NOPE" + b"\0" * 20, "no TFL3 identifier"),
    (b"\xff\xff\0\0TFL3" + b"\0" * 20, "truncated or corrupt"),
])
def test_structure_check(data, words):
    with pytest.raises(ModelLoadError, match=words):
        check_structure(data, "m.tflite")
