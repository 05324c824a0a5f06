"""The Pareto table ``edgekit optimize`` prints.

Example:
    >>> from edgekit.optimize.pareto import Budgets, select
    >>> rows = [{"name": "fp32", "drop_points": 0.0, "drop_basis": "labels", "size_bytes": 2048,
    ...          "size_ratio_fp32": 1.0, "latency": {"p50": 0.1, "p95": 0.2}}]
    >>> print(table(rows, select(rows, Budgets()), Budgets()))   # doctest: +NORMALIZE_WHITESPACE
      candidate  drop (pts)  size KB  x fp32  p50 ms  p95 ms  h2h p50  budgets
    > fp32       0.00        2.0      1.00    0.100   0.200   -        ok *
    (> picked, * on the Pareto front of drop, size and p50)
"""

from __future__ import annotations

from typing import Any


def _ms(v: float | None) -> str:
    return "-" if v is None else (f"{v:.3f}" if v < 10 else f"{v:.1f}")


def fmt_points(v: float | None) -> str:
    """Accuracy points with 2 decimals; -0.00 (a tiny gain) shows as 0.00."""
    return "-" if v is None else f"{v + 0.0:.2f}".replace("-0.00", "0.00")


def table(rows: list[dict[str, Any]], selection, budgets) -> str:
    """One line per candidate: drop, size, latency, and which budgets it misses."""
    from .pareto import violations

    pick = selection.pick["name"] if selection.pick else None
    front, meeting = selection.front, selection.meeting
    head = ("", "candidate", "drop (pts)", "size KB", "x fp32", "p50 ms", "p95 ms", "h2h p50", "budgets")
    out = [head]
    for r in rows:
        mark = ">" if r["name"] == pick else " "
        if r.get("error"):
            out.append((mark, r["name"], "-", "-", "-", "-", "-", "-", "failed: " + r["error"][:60]))
            continue
        lat = r.get("latency") or {}
        d = r.get("drop_points")
        drop = fmt_points(d) + ("" if d is None or r.get("drop_basis") == "labels" else " (agr)")
        status = "ok" if r["name"] in meeting else "over: " + ",".join(violations(r, budgets))
        if r["name"] in front:
            status += " *"
        ratio = r.get("size_ratio_fp32")
        out.append((mark, r["name"], drop, f"{r['size_bytes'] / 1024:.1f}", "-" if ratio is None else f"{ratio:.2f}",
                    _ms(lat.get("p50")), _ms(lat.get("p95")), _ms(r.get("h2h_p50")), status))
    widths = [max(len(row[i]) for row in out) for i in range(len(head))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in out]
    lines.append("(> picked, * on the Pareto front of drop, size and p50)")
    return "\n".join(lines)
