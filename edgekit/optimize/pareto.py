"""Budgets, the Pareto front and the selection rule over measured candidates.

A candidate row is a dict with ``name``, ``drop_points`` (accuracy lost, in points; None
when it could not be measured), ``size_bytes``, and ``latency`` (``p50``/``p95`` ms) plus,
for the finalists, ``h2h_p50`` (median from the interleaved head-to-head run).

The rule: among candidates that meet every budget, pick the fastest by p50 (the median
is what a steady app sees and is the stablest figure on a shared machine; the latency
*budget* is checked on p95, like ``edgekit profile``). Two candidates whose p50 differ
by no more than ``margin`` (5 % by default) are equally fast: then the smaller file wins,
then the smaller accuracy drop. So the pick is never slower, by more than the margin,
than another candidate that meets the same budgets.

Example:
    >>> rows = [{"name": "fp32", "drop_points": 0.0, "size_bytes": 4000, "latency": {"p50": 1.0, "p95": 1.2}},
    ...         {"name": "int8", "drop_points": 0.4, "size_bytes": 1000, "latency": {"p50": 1.3, "p95": 1.5}}]
    >>> select(rows, Budgets(max_drop_points=1.0)).pick["name"]
    'fp32'
    >>> select(rows, Budgets(max_drop_points=1.0, max_size_kb=2)).pick["name"]
    'int8'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError

MARGIN = 0.05  # p50 within 5 % counts as equally fast (run-to-run noise on a shared 2-core VM is 2-4 %)


@dataclass(frozen=True)
class Budgets:
    max_drop_points: float | None = 1.0
    max_latency_ms: float | None = None  # on p95
    max_size_kb: float | None = None  # KiB, 1024 bytes

    def __post_init__(self):
        for name, v in (("--max-accuracy-drop", self.max_drop_points), ("--max-latency-ms", self.max_latency_ms),
                        ("--max-size-kb", self.max_size_kb)):
            if v is not None and (v != v or v < 0 or (v == 0 and name != "--max-accuracy-drop")):
                raise UsageError(f"{name} must be a positive number, got {v}")

    def to_dict(self) -> dict[str, Any]:
        return {"max_accuracy_drop_points": self.max_drop_points, "max_latency_ms_p95": self.max_latency_ms,
                "max_size_kb": self.max_size_kb}


def speed(row: dict[str, Any]) -> float:
    """The p50 the rule compares: the head-to-head figure when there is one."""
    if row.get("h2h_p50") is not None:
        return float(row["h2h_p50"])
    lat = row.get("latency") or {}
    return float(lat["p50"]) if lat.get("p50") is not None else float("inf")


def violations(row: dict[str, Any], b: Budgets) -> dict[str, float]:
    """Budget -> how far over it the row is, as a fraction of the budget (missing figure: inf)."""
    out: dict[str, float] = {}
    if row.get("error"):
        return {"failed": float("inf")}
    if b.max_drop_points is not None:
        d = row.get("drop_points")
        if d is None:
            out["accuracy"] = float("inf")
        elif d > b.max_drop_points:
            out["accuracy"] = (d - b.max_drop_points) / max(b.max_drop_points, 1.0)
    if b.max_latency_ms is not None:
        p95 = (row.get("latency") or {}).get("p95")
        if p95 is None:
            out["latency"] = float("inf")
        elif p95 > b.max_latency_ms:
            out["latency"] = p95 / b.max_latency_ms - 1.0
    if b.max_size_kb is not None and row["size_bytes"] > b.max_size_kb * 1024:
        out["size"] = row["size_bytes"] / (b.max_size_kb * 1024) - 1.0
    return out


def pareto_front(rows: list[dict[str, Any]]) -> list[str]:
    """Names of rows no other row beats on all of (drop, size, p50) and strictly on one."""
    ok = [r for r in rows if not r.get("error") and r.get("drop_points") is not None]

    def key(r):
        return (max(r["drop_points"], 0.0), r["size_bytes"], speed(r))

    front = []
    for r in ok:
        kr = key(r)
        if not any(all(a <= b for a, b in zip(key(o), kr)) and key(o) != kr for o in ok if o is not r):
            front.append(r["name"])
    return front


def rank(rows: list[dict[str, Any]], margin: float = MARGIN) -> list[dict[str, Any]]:
    """Rows in the order the rule prefers them: fastest first, equally fast (within margin) by size then drop."""
    rest = sorted(rows, key=speed)
    out: list[dict[str, Any]] = []
    while rest:
        fastest = speed(rest[0])
        tied = [r for r in rest if speed(r) <= fastest * (1.0 + margin)]
        tied.sort(key=lambda r: (r["size_bytes"], r.get("drop_points") or 0.0, speed(r)))
        out.append(tied[0])
        rest.remove(tied[0])
    return out


@dataclass
class Selection:
    pick: dict[str, Any] | None
    meeting: list[str]
    front: list[str]
    closest: list[dict[str, Any]] = field(default_factory=list)  # when nothing meets: [{"name", "over": {...}}]

    def to_dict(self) -> dict[str, Any]:
        return {"pick": self.pick["name"] if self.pick else None, "meeting_budgets": self.meeting,
                "pareto_front": self.front, "closest": self.closest}


def contenders(rows: list[dict[str, Any]], b: Budgets, within: float = 0.25) -> list[dict[str, Any]]:
    """Budget-meeting rows whose p50 is within ``within`` of the fastest: worth a head-to-head run."""
    meeting = [r for r in rows if not violations(r, b)]
    if not meeting:
        return []
    fastest = min(speed(r) for r in meeting)
    return [r for r in meeting if speed(r) <= fastest * (1.0 + within)]


def select(rows: list[dict[str, Any]], b: Budgets, margin: float = MARGIN, n_closest: int = 3) -> Selection:
    """Apply the rule; when no row meets every budget, name the closest ones and by how much they miss."""
    meeting = [r for r in rows if not violations(r, b)]
    front = pareto_front(rows)
    if meeting:
        return Selection(rank(meeting, margin)[0], [r["name"] for r in meeting], front)
    scored = [(sum(v.values()), r, v) for r in rows if "failed" not in (v := violations(r, b))]
    scored.sort(key=lambda t: (t[0], speed(t[1])))
    closest = [{"name": r["name"], "over": {k: (None if x == float("inf") else round(x, 4)) for k, x in v.items()}}
               for _, r, v in scored[:n_closest]]
    return Selection(None, [], front, closest)
