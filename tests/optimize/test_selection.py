"""The selection rule, budgets, Pareto front and closest candidates, on recorded trial figures (no TensorFlow)."""

from __future__ import annotations

import pytest

from edgekit.errors import UsageError
from edgekit.optimize.pareto import Budgets, pareto_front, rank, select, violations

# Figures as optimize recorded them for the planted digits model (sizes in bytes, ms): int8 loses 3 points.
ROWS = [
    {"name": "fp32", "drop_points": 0.0, "size_bytes": 164_612, "latency": {"p50": 0.011, "p95": 0.012}},
    {"name": "fp16", "drop_points": 0.0, "size_bytes": 86_080, "latency": {"p50": 0.0112, "p95": 0.013}},
    {"name": "dynamic", "drop_points": 3.33, "size_bytes": 48_008, "latency": {"p50": 0.004, "p95": 0.004}},
    {"name": "int8", "drop_points": 3.11, "size_bytes": 49_184, "latency": {"p50": 0.004, "p95": 0.005}},
    {"name": "int8+float(sensitive)", "drop_points": -0.22, "size_bytes": 55_032,
     "latency": {"p50": 0.0042, "p95": 0.006}},
    {"name": "broken", "error": "the converter cannot lower tf.Foo", "size_bytes": 0},
]


def by(name):
    return next(r for r in ROWS if r["name"] == name)


def test_accuracy_only_budget_picks_the_fastest_meeting_candidate():
    sel = select(ROWS, Budgets(max_drop_points=1.0))
    assert sel.pick["name"] == "int8+float(sensitive)"
    assert set(sel.meeting) == {"fp32", "fp16", "int8+float(sensitive)"}


def test_never_slower_than_another_budget_meeting_candidate():
    # int8 is smaller than fp32, but 12% slower (the MobileNetV2 case on x86): fp32 wins on speed
    rows = [{"name": "fp32", "drop_points": 0.0, "size_bytes": 14_000_000, "latency": {"p50": 8.9, "p95": 9.5}},
            {"name": "int8", "drop_points": 0.5, "size_bytes": 4_000_000, "latency": {"p50": 10.0, "p95": 10.6}}]
    assert select(rows, Budgets(max_drop_points=1.0)).pick["name"] == "fp32"
    # a size budget fp32 misses changes the set that meets the budgets, and so the pick
    assert select(rows, Budgets(max_drop_points=1.0, max_size_kb=5000)).pick["name"] == "int8"


def test_equal_speed_within_margin_goes_to_the_smaller_file():
    # fp16 is 1.8% slower than fp32 here: inside the 5% margin, so it is "as fast" and smaller
    rows = [by("fp32"), by("fp16")]
    assert select(rows, Budgets()).pick["name"] == "fp16"
    assert select(rows, Budgets(), margin=0.01).pick["name"] == "fp32"


def test_head_to_head_figure_overrides_the_single_profile():
    rows = [dict(by("fp32"), h2h_p50=0.020), dict(by("fp16"), h2h_p50=0.011)]
    assert select(rows, Budgets(), margin=0.0).pick["name"] == "fp16"
    rows = [dict(by("fp32"), h2h_p50=0.010), dict(by("fp16"), h2h_p50=0.020)]
    assert select(rows, Budgets(), margin=0.0).pick["name"] == "fp32"


def test_rank_orders_by_speed_then_size():
    order = [r["name"] for r in rank([r for r in ROWS if not r.get("error")])]
    assert order[0] == "dynamic"  # 0.004, smaller than int8 at the same speed
    assert order.index("int8+float(sensitive)") < order.index("fp32")


def test_latency_budget_uses_p95():
    row = {"name": "a", "drop_points": 0.0, "size_bytes": 10, "latency": {"p50": 1.0, "p95": 3.0}}
    assert violations(row, Budgets(max_latency_ms=2.0)) == {"latency": pytest.approx(0.5)}
    assert violations(row, Budgets(max_latency_ms=3.0)) == {}


def test_no_candidate_meets_budgets_gives_the_closest():
    sel = select(ROWS, Budgets(max_drop_points=1.0, max_size_kb=50))
    assert sel.pick is None and sel.meeting == []
    names = [c["name"] for c in sel.closest]
    assert names[0] == "int8+float(sensitive)"  # only 10% over the size budget, within accuracy
    assert "broken" not in names
    assert sel.closest[0]["over"] == {"size": pytest.approx(55_032 / 51_200 - 1, abs=1e-3)}


def test_missing_accuracy_counts_as_over_budget():
    row = {"name": "regressor", "drop_points": None, "size_bytes": 10, "latency": {"p50": 1.0, "p95": 1.0}}
    assert "accuracy" in violations(row, Budgets(max_drop_points=1.0))
    assert violations(row, Budgets(max_drop_points=None)) == {}


def test_pareto_front():
    front = pareto_front(ROWS)
    # fp32 and fp16: float(sensitive) is as accurate (a negative drop counts as 0), smaller and faster
    assert "fp32" not in front and "fp16" not in front
    # int8 stays: dynamic is smaller but less accurate, float(sensitive) more accurate but bigger
    assert front == ["dynamic", "int8", "int8+float(sensitive)"]


@pytest.mark.parametrize("kw", [dict(max_latency_ms=0), dict(max_size_kb=-1), dict(max_drop_points=-0.5)])
def test_bad_budgets_are_usage_errors(kw):
    with pytest.raises(UsageError):
        Budgets(**kw)
