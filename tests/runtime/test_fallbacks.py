"""Every fallback path with real models and real failures; each leaves an incident record."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.errors import (
    InferenceError, LatencyBudgetError, ModelLoadError, OutOfDistributionError, OutputValidationError,
    TamperedModelError,
)
from edgekit.runtime import EdgeModel, Policy

IN_RANGE = np.array([0, 1, 2, 3], np.float32)
OUT_OF_TABLE = np.array([0, 1, 2, 9], np.float32)  # gather index 9 of a 4-entry table: invoke fails


def test_invoke_error_falls_back(tiny_models, tmp_path):
    log = tmp_path / "incidents.jsonl"
    model = EdgeModel.load(tiny_models["gather"], fallback=tiny_models["safe_gather"], incident_log=log)
    assert model.predict(IN_RANGE).output.tolist() == [10, 20, 30, 40]
    pred = model.predict(OUT_OF_TABLE)
    assert pred.sources == ["fallback"] and pred.output.tolist() == [10, 20, 30, 40]
    rec = json.loads(log.read_text().splitlines()[-1])
    assert rec["kind"] == "invoke" and rec["action"] == "fallback" and "GATHER" in rec["reason"]
    assert rec["input"]["max"] == 9.0 and "values" not in rec["input"]


def test_invoke_error_raises_or_defaults_without_fallback(tiny_models):
    with pytest.raises(InferenceError, match="gather index out of bounds"):
        EdgeModel.load(tiny_models["gather"]).predict(OUT_OF_TABLE)
    model = EdgeModel.load(tiny_models["gather"], policy=Policy(on_invoke="default", default=[-1, -1, -1, -1]))
    pred = model.predict(OUT_OF_TABLE)
    assert pred.sources == ["default"] and pred.output.tolist() == [-1, -1, -1, -1]
    assert model.incidents()[-1]["action"] == "default"


def test_nan_output_falls_back_defaults_or_raises(tiny_models):
    negative = np.array([1, -1, 2, 3], np.float32)
    model = EdgeModel.load(tiny_models["log"], fallback=tiny_models["log_abs"])
    pred = model.predict(negative)
    assert pred.sources == ["fallback"] and np.isfinite(pred.output).all()
    assert pred.incidents[0]["kind"] == "output" and "output_finite" in pred.incidents[0]["reason"]
    with pytest.raises(OutputValidationError, match="output_finite"):
        EdgeModel.load(tiny_models["log"]).predict(negative)  # "fallback" without one raises
    allowed = EdgeModel.load(tiny_models["log"], policy=Policy(on_output="allow")).predict(negative)
    assert np.isnan(allowed.output[1]) and allowed.flagged.tolist() == [True]


def test_ood_input_falls_back_per_sample(int8_path, fp32_path, digits, ood_sets, tmp_path):
    log = tmp_path / "inc.jsonl"
    model = EdgeModel.load(int8_path, fallback=fp32_path, policy=Policy(on_ood="fallback"), incident_log=log)
    mixed = np.concatenate([digits.x_test[:3], ood_sets["noise"][:2]])
    pred = model.predict(mixed)
    assert pred.sources == ["model"] * 3 + ["fallback"] * 2
    fp32 = EdgeModel.load(fp32_path).predict(ood_sets["noise"][:2]).output
    np.testing.assert_allclose(pred.output[3:], fp32, atol=1e-6)
    rec = json.loads(log.read_text().splitlines()[-1])
    assert rec["kind"] == "ood" and rec["samples"] == [3, 4] and rec["input"]["shape"] == [2, 8, 8, 1]
    with pytest.raises(OutOfDistributionError, match="ood"):
        EdgeModel.load(int8_path, policy=Policy(on_ood="raise")).predict(ood_sets["blank"][0])


def test_low_confidence_is_an_output_failure(int8_path, fp32_path, ood_sets):
    model = EdgeModel.load(int8_path, fallback=fp32_path, policy=Policy(min_confidence=0.99, on_output="raise"))
    with pytest.raises(OutputValidationError, match="confidence"):
        model.predict(ood_sets["noise"][:20])


def test_latency_budget(int8_path, digits):
    with pytest.raises(LatencyBudgetError, match="over the 0 ms budget"):
        EdgeModel.load(int8_path, policy=Policy(latency_budget_ms=0.0, on_latency="raise")).predict(digits.x_test[0])
    model = EdgeModel.load(int8_path, policy=Policy(latency_budget_ms=0.0))
    pred = model.predict(digits.x_test[0])
    assert pred.sources == ["model"] and pred.incidents[0]["kind"] == "latency"
    assert {c.name: c.ok for c in pred.checks}["latency"] is False
    roomy = EdgeModel.load(int8_path, policy=Policy(latency_budget_ms=60_000.0)).predict(digits.x_test[0])
    assert roomy.ok


def test_tampered_model_refused_unless_policy_relaxes(int8_path, tmp_path):
    data = bytearray(int8_path.read_bytes())
    target = tmp_path / int8_path.name
    data[-8] ^= 0x01  # one bit in the trailing metadata: still a loadable model, different sha256
    target.write_bytes(bytes(data))
    manifest = int8_path.with_name(int8_path.stem + ".manifest.json")
    target.with_name(manifest.name).write_bytes(manifest.read_bytes())
    with pytest.raises(TamperedModelError, match="does not match the manifest"), pytest.warns(UserWarning):
        EdgeModel.load(target, policy=Policy(on_load="raise"))
    relaxed = EdgeModel.load(target, policy=Policy(verify_sha256=False))
    assert relaxed.predict(np.zeros((8, 8, 1), np.float32)).output.shape == (10,)


def test_load_failure_uses_fallback_model(int8_path, fp32_path, digits, tmp_path):
    broken = tmp_path / int8_path.name
    broken.write_bytes(int8_path.read_bytes()[:5000])  # truncated copy, manifest next to it
    manifest = int8_path.with_name(int8_path.stem + ".manifest.json")
    broken.with_name(manifest.name).write_bytes(manifest.read_bytes())
    with pytest.raises(ModelLoadError):
        EdgeModel.load(broken, policy=Policy(verify_sha256=False))  # no fallback given: raise
    model = EdgeModel.load(broken, fallback=fp32_path, policy=Policy(verify_sha256=False))
    assert model.health()["fallback_active"] and model.incidents()[0]["kind"] == "load"
    pred = model.predict(digits.x_test[:4])
    assert pred.sources == ["fallback"] * 4 and pred.output.shape == (4, 10)


def test_default_fills_every_row_even_when_the_batch_size_equals_the_class_count(int8_path):
    """A 10-sample batch of a 10-class model: the default is one row's value, not the whole answer."""
    uniform = [0.1] * 10
    model = EdgeModel.load(int8_path, policy=Policy(on_ood="default", default=uniform))
    pred = model.predict(np.full((10, 8, 8, 1), 3.0, np.float32))
    assert pred.output.shape == (10, 10) and np.allclose(pred.output, 0.1) and pred.sources == ["default"] * 10
