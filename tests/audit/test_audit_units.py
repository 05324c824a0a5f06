"""The audit's parts on their own: numpy only, no TensorFlow, no models."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest

from edgekit.audit import backdoor, classes, datacheck, governance, guard_roc, perturb, schema
from edgekit.audit.thresholds import AuditThresholds
from edgekit.errors import DataError, DeviceProfileError, UsageError
from edgekit.runtime import output_score

MODULES = ["edgekit.audit.perturb", "edgekit.audit.classes", "edgekit.audit.guard_roc", "edgekit.audit.backdoor",
           "edgekit.audit.datacheck", "edgekit.audit.governance", "edgekit.audit.schema",
           "edgekit.audit.thresholds", "edgekit.runtime.output_score", "edgekit.audit.blackbox"]


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0


X = np.random.default_rng(0).uniform(0, 1, (20, 8, 8, 1)).astype(np.float32)


@pytest.mark.parametrize("p", list(perturb.PERTURBATIONS.values()), ids=lambda p: p.name)
def test_perturbations_are_seeded_in_range_and_grow_with_strength(p):
    a = p.apply(X, p.strengths[0], (0.0, 1.0), np.random.default_rng(3))
    b = p.apply(X, p.strengths[0], (0.0, 1.0), np.random.default_rng(3))
    assert a.shape == X.shape and a.dtype == np.float32 and np.array_equal(a, b)
    assert a.min() >= 0.0 and a.max() <= 1.0
    weak, strong = (np.abs(p.apply(X, s, (0.0, 1.0), np.random.default_rng(3)) - X).mean()
                    for s in (p.strengths[0], {"scaling": 0.5, "brightness": 0.3}.get(p.name, p.strengths[-1])))
    assert strong > weak > 0


def test_vector_inputs_get_noise_and_scaling_only():
    assert [p.name for p in perturb.applicable((64,))] == ["gaussian_noise", "scaling"]
    assert len(perturb.applicable((8, 8, 1))) == len(perturb.PERTURBATIONS)


def test_roc_auc_matches_the_pairwise_definition():
    rng = np.random.default_rng(1)
    neg, pos = rng.normal(0, 1, 200), rng.normal(1, 1, 150)
    neg[:10] = pos[:10]  # ties count half
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert guard_roc.roc_auc(neg, pos) == pytest.approx(pairs)
    assert guard_roc.roc_auc(neg, neg + 100) == 1.0


def test_threshold_for_fpr_keeps_the_rate_on_its_data():
    clean = np.random.default_rng(2).normal(size=1000)
    for fpr in (0.01, 0.05, 0.2):
        t = guard_roc.threshold_for_fpr(clean, fpr)
        assert np.mean(clean > t) <= fpr
        assert np.mean(clean >= t) > fpr  # and not more conservative than needed


def test_output_signal_picks_msp_for_probabilities_and_energy_for_logits():
    logits = np.random.default_rng(0).normal(0, 3, (50, 10))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert output_score.output_signal(probs) == "msp"
    assert output_score.output_signal(logits) == "energy"
    int8_probs = np.round(probs * 256) / 256  # a quantized softmax sums to 1 only within its step
    assert output_score.output_signal(int8_probs) == "msp"
    # more confident -> lower score, for both signals
    assert output_score.msp_score(probs)[np.argmax(probs.max(1))] == output_score.msp_score(probs).min()
    assert output_score.energy_score(logits * 3).mean() < output_score.energy_score(logits).mean()


def test_one_class_dropping_fails_even_when_the_average_is_fine():
    y = np.repeat(np.arange(10), 40)
    conv = y.copy()
    conv[np.flatnonzero(y == 3)[:4]] = 5  # class 3 loses 10 points; the average only 1
    res = classes.per_class(y, y, conv, [str(i) for i in range(10)])
    assert res["worst"]["label"] == "3" and res["worst"]["drop_points"] == 10.0
    average = schema.check("accuracy.drop", "accuracy", 100 * (1 - np.mean(conv == y)), 2.0, "<=", "points")
    worst = schema.check("classes.worst_drop", "classes", res["worst"]["drop_points"], 5.0, "<=", "points")
    assert average["passed"] and not worst["passed"]
    assert schema.verdict([average, worst])["failed"] == ["classes.worst_drop"]


def test_a_check_without_a_figure_fails_and_evidence_checks_do_not_gate():
    assert not schema.check("x", "s", None, 1.0, "<=", "share")["passed"]
    weak = schema.check("adversarial.attack_strength", "adversarial", 5.0, 30.0, ">=", "points", gate=False)
    assert schema.verdict([weak]) == {"passed": True, "failed": [], "gating": 0,
                                      "not_gating_failed": ["adversarial.attack_strength"]}


def test_leakage_finds_exact_and_near_duplicates():
    rng = np.random.default_rng(0)
    train = rng.uniform(0, 1, (100, 8, 8, 1)).astype(np.float32)
    ev = rng.uniform(0, 1, (20, 8, 8, 1)).astype(np.float32)
    ev[0] = train[5]
    ev[1] = train[9] + 0.002  # a re-encoded copy
    ev[2] = train[9] + 0.2  # a different picture
    r = datacheck.leakage(train, ev, (0.0, 1.0))
    assert (r["exact"], r["near"], r["examples"]) == (1, 1, [0, 1])


def test_odd_samples_and_balance():
    x = np.zeros((5, 4), np.float32)
    x[1:] = np.arange(4)
    odd = datacheck.odd_samples(x, (0.0, 1.0))
    assert odd["constant"] == 1 and odd["out_of_range"] == 4
    assert datacheck.balance(np.array([0, 0, 0, 1]), ["a", "b"]) == {"counts": {"a": 3, "b": 1},
                                                                     "min_over_max": 1 / 3}


def test_nist_map_has_every_measure_2_subcategory_once():
    rows = governance.nist_measure_map({"guard", "adversarial"})
    assert [r["id"] for r in rows] == [f"MEASURE 2.{i}" for i in range(1, 14)]
    by = {r["id"]: r for r in rows}
    assert by["MEASURE 2.7"]["covered"] and not by["MEASURE 2.2"]["covered"] and not by["MEASURE 2.10"]["covered"]


def test_declarations_from_toml_and_flags(tmp_path):
    f = tmp_path / "gov.toml"
    f.write_text('[eval]\nsource = "sklearn digits"\nlicense = "CC BY 4.0"\n[model]\nlicense = "MIT"\n')
    d = governance.load_declarations(f, eval_license="CC0", calibration_source=None)
    assert d["eval"] == {"source": "sklearn digits", "license": "CC0"} and d["model"] == {"license": "MIT"}
    f.write_text('[eval]\nowner = "me"\n')
    with pytest.raises(DataError, match="gov.toml: unexpected entry 'eval'"):
        governance.load_declarations(f)


def test_thresholds_refuse_bad_values_and_unknown_targets():
    with pytest.raises(UsageError, match="must be between 0 and 1"):
        AuditThresholds.resolve(None, {"target_fpr": 5.0})
    with pytest.raises(UsageError, match="unknown audit threshold"):
        AuditThresholds.resolve(None, {"max_speed": 1.0})
    with pytest.raises(DeviceProfileError, match="unknown profile"):
        AuditThresholds.resolve("no-such-board")
    assert AuditThresholds.resolve("raspberry-pi-4") == AuditThresholds()  # no [audit] table: defaults


def test_backdoor_rule_needs_success_and_concentration():
    before = np.repeat(np.arange(10), 10)
    hijacked = np.full(100, 7)  # a trigger: everything goes to 7
    scattered = (before + 1) % 10  # everything flips, but to every class
    assert backdoor.flip_stats(before, hijacked) == {"flip_rate": 0.9, "target": 7, "concentration": 1.0,
                                                      "success": 1.0}
    s = backdoor.flip_stats(before, scattered)
    assert s["success"] <= 0.12 and s["concentration"] <= 0.11


def test_a_profile_audit_table_sets_thresholds_and_flags_override_it(tmp_path):
    board = tmp_path / "board.toml"
    board.write_text('arch = "aarch64"\ncores = 4\nmemory_mb = 1024\n[audit]\nmax_class_drop_points = 3.0\nmin_ood_detection = 0.9\n')
    t = AuditThresholds.resolve(board, {"min_ood_detection": 0.99})
    assert (t.max_class_drop_points, t.min_ood_detection, t.max_clean_fpr) == (3.0, 0.99, 0.02)
    board.write_text('arch = "aarch64"\ncores = 4\nmemory_mb = 1024\n[audit]\nmax_speed = 3.0\n')
    with pytest.raises(UsageError, match="unknown audit threshold"):
        AuditThresholds.resolve(board)
