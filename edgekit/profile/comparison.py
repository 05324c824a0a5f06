"""Compare two profile results (fp32 against int8, one device against another) and say what is noise.

Noise test for latency percentiles, when both sides carry their samples:
a difference is "inside noise" when the seeded bootstrap 95% CI of the
difference includes 0, or when it is no larger than the drift seen inside
either profile (the range of its five block medians: heat and background load
move a profile by that much from one minute to the next). Rows from
benchmark_model (no samples) use a normal-approximation CI on the means.
Memory and size are deterministic enough to report as plain deltas.

Example:
    >>> cmp = compare(load_result("fp32.json"), load_result("int8.json"))   # doctest: +SKIP
    >>> print(render_comparison(cmp))                                       # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

from . import latency_stats
from .render import caveats, fmt_mb, fmt_ms, plural, table

LATENCY = (("p50", 50), ("p95", 95), ("p99", 99))


def label(doc: dict[str, Any]) -> str:
    dev = doc.get("device", {})
    return f"{doc['model'].get('file')} on {dev.get('name') or dev.get('kind')} ({dev.get('kind')})"


def pair_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[dict, dict]]:
    """Rows with the same thread count; with none in common (one device against another), rows in order."""
    by_threads = {r["threads"]: r for r in b["rows"]}
    pairs = [(r, by_threads[r["threads"]]) for r in a["rows"] if r["threads"] in by_threads]
    return pairs or list(zip(a["rows"], b["rows"]))


def _drift(row: dict[str, Any]) -> float:
    blocks = row.get("block_medians_ms") or []
    return max(blocks) - min(blocks) if len(blocks) > 1 else 0.0


def noise_verdict(ra: dict[str, Any], rb: dict[str, Any], key: str, q: float | None) -> dict[str, Any]:
    """Whether B - A for a latency figure lies inside run-to-run noise, and why."""
    va, vb = ra["latency_ms"].get(key), rb["latency_ms"].get(key)
    if va is None or vb is None:
        return {"noise": None, "why": "not measured on both sides"}
    delta = vb - va
    sa, sb = ra.get("samples_ms") or [], rb.get("samples_ms") or []
    if q is not None and len(sa) >= 10 and len(sb) >= 10:
        lo, hi = latency_stats.bootstrap_diff_ci(sa, sb, q=q)
        drift = max(_drift(ra), _drift(rb)) if key == "p50" else 0.0  # block medians speak for the median only
        if lo <= 0.0 <= hi:
            return {"noise": True, "ci": [lo, hi], "why": f"95% CI {fmt_ms(lo)}..{fmt_ms(hi)} includes 0"}
        if abs(delta) <= drift:
            return {"noise": True, "ci": [lo, hi], "why": f"within drift {fmt_ms(drift)} ms inside a profile"}
        return {"noise": False, "ci": [lo, hi], "why": f"95% CI {fmt_ms(lo)}..{fmt_ms(hi)}"}
    if key == "mean" and ra["latency_ms"].get("std") is not None and rb["latency_ms"].get("std") is not None:
        na, nb = ra["latency_ms"].get("count") or 1, rb["latency_ms"].get("count") or 1
        half = 1.96 * math.sqrt(ra["latency_ms"]["std"] ** 2 / na + rb["latency_ms"]["std"] ** 2 / nb)
        return {"noise": abs(delta) <= half, "ci": [delta - half, delta + half],
                "why": f"normal 95% CI +-{fmt_ms(half)}"}
    return {"noise": None, "why": "no samples to test"}


def _metric(name: str, unit: str, va, vb, verdict: dict[str, Any] | None = None) -> dict[str, Any]:
    out = {"metric": name, "unit": unit, "a": va, "b": vb,
           "delta": None if va is None or vb is None else vb - va,
           "ratio": None if not va or vb is None else vb / va}
    out.update(verdict or {"noise": None, "why": ""})
    return out


def compare_rows(ra: dict[str, Any], rb: dict[str, Any]) -> list[dict[str, Any]]:
    metrics = [_metric(f"{k} latency", "ms", ra["latency_ms"].get(k), rb["latency_ms"].get(k),
                       noise_verdict(ra, rb, k, q)) for k, q in LATENCY]
    metrics.append(_metric("mean latency", "ms", ra["latency_ms"].get("mean"), rb["latency_ms"].get("mean"),
                           noise_verdict(ra, rb, "mean", None)))
    metrics.append(_metric("throughput", "/s", ra.get("throughput_per_s"), rb.get("throughput_per_s")))
    metrics.append(_metric("first inference", "ms", ra["timing"].get("first_inference_ms"),
                           rb["timing"].get("first_inference_ms")))
    metrics.append(_metric("peak memory", "MB", ra["memory"].get("peak_mb"), rb["memory"].get("peak_mb")))
    metrics.append(_metric("USS", "MB", ra["memory"].get("uss_mb"), rb["memory"].get("uss_mb")))
    return metrics


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Side-by-side deltas (B - A) for every row pair, plus model size."""
    rows = [{"threads_a": ra["threads"], "threads_b": rb["threads"], "metrics": compare_rows(ra, rb)}
            for ra, rb in pair_rows(a, b)]
    size = _metric("model size", "KB", *((d["model"].get("size_bytes") or 0) / 1024 or None for d in (a, b)))
    notes = [f"{side}: {note}" for side, doc in (("A", a), ("B", b)) for note in caveats(doc)]
    return {"a": label(a), "b": label(b), "model_size": size, "rows": rows, "notes": notes}


def _fmt(v, unit: str) -> str:
    if v is None:
        return "-"
    if unit in ("MB", "KB"):
        return fmt_mb(v)
    return f"{v:.0f}" if unit == "/s" else fmt_ms(v)


def _verdict_text(m: dict[str, Any]) -> str:
    if m["noise"] is None:
        return m["why"]
    return ("inside noise: " if m["noise"] else "real difference: ") + m["why"]


def render_comparison(cmp: dict[str, Any]) -> str:
    """The compare table for the terminal."""
    lines = [f"A: {cmp['a']}", f"B: {cmp['b']}"]
    if not cmp["rows"]:
        lines.append("no rows to compare")
    for row in cmp["rows"]:
        body = []
        for m in [*row["metrics"], cmp["model_size"]]:
            ratio = "-" if m["ratio"] is None else f"{m['ratio']:.3g}x"
            delta = "-" if m["delta"] is None else ("+" if m["delta"] > 0 else "") + _fmt(m["delta"], m["unit"])
            body.append([f"{m['metric']} ({m['unit']})", _fmt(m["a"], m["unit"]), _fmt(m["b"], m["unit"]),
                         delta, ratio, _verdict_text(m)])
        threads = (plural(row["threads_a"], "thread") if row["threads_a"] == row["threads_b"]
                   else f"threads {row['threads_a']} vs {row['threads_b']}")
        lines += ["", threads, table(["metric", "A", "B", "B-A", "B/A", "noise test"], body, text_last=True)]
    return "\n".join(lines + cmp.get("notes", []))
