"""A self-contained HTML report: latency histogram and percentile plot as inline SVG, plus the numbers.

No matplotlib and no network: one file that opens anywhere and can be attached
to a CI run. Plots need per-run samples, which benchmark_model (adb) does not
give; the report says so instead of drawing an empty plot.

Example:
    >>> write_report(load_result("digits-int8.json"), "digits-int8.html")   # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from . import latency_stats
from .render import budget_lines, caveats, fmt_mb, fmt_ms, load_init_ms, machine_line, plural

W, H = 640, 260
M = {"l": 56, "r": 16, "t": 16, "b": 40}  # plot margins in px
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 5 x 10^k steps)."""
    import math

    span = (hi - lo) or abs(hi) or 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step) + 1)]


def _axes(x_lo, x_hi, y_lo, y_hi, x_label, y_label):
    """(SVG for axes, ticks and labels, mapping function from data to pixels)."""
    pw, ph = W - M["l"] - M["r"], H - M["t"] - M["b"]

    def sx(x):
        return M["l"] + (x - x_lo) / ((x_hi - x_lo) or 1) * pw

    def sy(y):
        return M["t"] + ph - (y - y_lo) / ((y_hi - y_lo) or 1) * ph

    parts = [f'<rect x="{M["l"]}" y="{M["t"]}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for t in _ticks(x_lo, x_hi):
        parts.append(f'<line x1="{sx(t):.1f}" y1="{M["t"] + ph}" x2="{sx(t):.1f}" y2="{M["t"] + ph + 4}" '
                     'stroke="#999"/>'
                     f'<text x="{sx(t):.1f}" y="{M["t"] + ph + 16}" text-anchor="middle">{t:g}</text>')
    for t in _ticks(y_lo, y_hi):
        parts.append(f'<line x1="{M["l"]}" y1="{sy(t):.1f}" x2="{M["l"] + pw}" y2="{sy(t):.1f}" stroke="#eee"/>'
                     f'<text x="{M["l"] - 6}" y="{sy(t) + 4:.1f}" text-anchor="end">{t:g}</text>')
    parts.append(f'<text x="{M["l"] + pw / 2}" y="{H - 6}" text-anchor="middle">{html.escape(x_label)}</text>'
                 f'<text transform="translate(14 {M["t"] + ph / 2}) rotate(-90)" text-anchor="middle">'
                 f'{html.escape(y_label)}</text>')
    return parts, sx, sy


def _svg(parts: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
            f'role="img" aria-label="{html.escape(title)}" font-size="11" font-family="sans-serif">'
            f'<title>{html.escape(title)}</title>{"".join(parts)}</svg>')


def histogram_svg(samples_ms: list[float], title: str) -> str:
    """Latency histogram up to p99.5; slower outliers are counted in a note rather than squashing the bars."""
    edges, counts, beyond = latency_stats.histogram(samples_ms)
    parts, sx, sy = _axes(edges[0], edges[-1], 0, max(counts) * 1.05, "latency (ms)", "runs")
    for lo, hi, c in zip(edges, edges[1:], counts):
        if c:
            width = max(sx(hi) - sx(lo) - 1, 1)
            parts.append(f'<rect class="bar" x="{sx(lo):.1f}" y="{sy(c):.1f}" width="{width:.1f}" '
                         f'height="{sy(0) - sy(c):.1f}" fill="{COLORS[0]}">'
                         f'<title>{lo:.4g}-{hi:.4g} ms: {c}</title></rect>')
    if beyond:
        parts.append(f'<text x="{W - M["r"] - 4}" y="{M["t"] + 14}" text-anchor="end">'
                     f'{beyond} slower run{"s" if beyond > 1 else ""} beyond p99.5 not shown</text>')
    return _svg(parts, title)


def percentile_svg(rows: list[dict[str, Any]], title: str) -> str:
    """Latency against percentile, one line per thread count, with p50/p95/p99 marked."""
    curves = [(r["threads"], latency_stats.percentile_curve(r["samples_ms"])) for r in rows if r.get("samples_ms")]
    y_hi = max(v for _, c in curves for _, v in c)
    parts, sx, sy = _axes(0, 100, 0, y_hi * 1.05, "percentile", "latency (ms)")
    for p in (50, 95, 99):
        parts.append(f'<line x1="{sx(p):.1f}" y1="{M["t"]}" x2="{sx(p):.1f}" y2="{H - M["b"]}" stroke="#bbb" '
                     f'stroke-dasharray="3 3"/>'
                     f'<text x="{sx(p) - 2:.1f}" y="{M["t"] + 12}" text-anchor="end">p{p}</text>')
    for i, (threads, curve) in enumerate(curves):
        pts = " ".join(f"{sx(q):.1f},{sy(v):.1f}" for q, v in curve)
        color = COLORS[i % len(COLORS)]
        parts.append(f'<polyline class="curve" points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>'
                     f'<text x="{M["l"] + 8}" y="{M["t"] + 16 + 14 * i}" fill="{color}">'
                     f'{_e(plural(threads, "thread"))}</text>')
    return _svg(parts, title)


def _e(value: Any) -> str:
    """Any value as HTML text: every string in a report may come from a device or a file, never from us."""
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _latency_table(rows: list[dict[str, Any]]) -> str:
    keys = ("min", "p50", "p90", "p95", "p99", "max", "mean", "std")
    return _table(["threads", *keys, "inferences/s", "load+init ms", "first ms"],
                  [[r["threads"], *(fmt_ms(r["latency_ms"].get(k)) for k in keys),
                    "-" if r.get("throughput_per_s") is None else f"{r['throughput_per_s']:.0f}",
                    fmt_ms(load_init_ms(r["timing"])),
                    fmt_ms(r["timing"].get("first_inference_ms"))] for r in rows])


def _memory_table(rows: list[dict[str, Any]]) -> str:
    keys = ("start_rss_mb", "baseline_rss_mb", "after_load_rss_mb", "peak_rss_sampled_mb", "ru_maxrss_mb",
            "peak_mb", "uss_mb", "pss_mb")
    return _table(["threads", *(k.removesuffix("_mb") for k in keys)],
                  [[r["threads"], *(fmt_mb(r["memory"].get(k)) for k in keys)] for r in rows])


def _per_op(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        per = r.get("per_op") or {}
        if not per.get("available"):
            out.append(f"<p>Per-op timings ({_e(plural(r['threads'], 'thread'))}): not available: "
                       f"{html.escape(per.get('reason') or 'not measured')}</p>")
            continue
        ops = sorted(per["ops"], key=lambda o: -(o.get("avg_ms") or 0))
        out.append(f"<h3>Per-op timings, {_e(plural(r['threads'], 'thread'))}</h3>" + _table(
            ["node type", "avg ms", "%", "first ms", "name"],
            [[o["type"], fmt_ms(o.get("avg_ms")), o.get("percent", "-"), fmt_ms(o.get("first_ms")), o.get("name", "")]
             for o in ops]))
    return "".join(out)


CSS = """body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.pass{color:#2a2}.fail{color:#c22}.unmeasured{color:#b60}
pre{background:#f6f6f6;padding:.5em;overflow:auto}"""


def render_html(doc: dict[str, Any]) -> str:
    """The report as one HTML string."""
    model, dev, rows = doc["model"], doc.get("device", {}), doc["rows"]
    title = f"{model.get('file')} on {dev.get('name') or dev.get('kind')}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{html.escape(machine_line(doc.get('machine') or {}))}<br>"
             f"{html.escape(str(rows[0].get('interpreter', {}).get('package')))} "
             f"{html.escape(str(rows[0].get('interpreter', {}).get('version')))}; "
             f"{(model.get('size_bytes') or 0) / 1024:.1f} KB, sha256 {html.escape(str(model.get('sha256'))[:16])}; "
             f"{_e(doc['settings'].get('runs'))} runs after {_e(doc['settings'].get('warmup'))} warm-up; "
             f"created {_e(doc.get('created', ''))}</p>"]
    for line in budget_lines(doc.get("budget")):
        cls = {True: "pass", False: "fail"}.get(doc["budget"]["passed"], "unmeasured")
        parts.append(f"<p class='{cls}'>{html.escape(line)}</p>")
    parts += [f"<p>{html.escape(note)}</p>" for note in caveats(doc)]
    parts.append("<h2>Latency (ms)</h2>" + _latency_table(rows))
    if any(r.get("samples_ms") for r in rows):
        parts.append("<h2>Percentiles</h2>" + percentile_svg(rows, f"latency percentiles, {title}"))
        parts.append("<h2>Histograms</h2>")
        parts += [f"<h3>{_e(plural(r['threads'], 'thread'))}</h3>" + histogram_svg(r["samples_ms"],
                                                                                  f"latency histogram, "
                  f"{plural(r['threads'], 'thread')}") for r in rows if r.get("samples_ms")]
    else:
        parts.append("<p>No per-run samples (benchmark_model reports only mean, std, min and max): "
                     "no histogram or percentile plot.</p>")
    parts.append("<h2>Memory (MB, RSS unless named)</h2>" + _memory_table(rows))
    parts.append(_per_op(rows))
    parts.append("<h2>Method</h2>" + _table(["figure", "how"], [[k, v] for k, v in doc.get("method", {}).items()]))
    machine = json.dumps({"machine": doc.get("machine"), "device": dev}, indent=1)
    parts.append(f"<h2>Machine</h2><pre>{html.escape(machine)}</pre></body></html>\n")
    return "".join(parts)


def write_report(doc: dict[str, Any], path: str | Path) -> Path:
    """Write the HTML report atomically; returns the path."""
    atomic_write_text(path, render_html(doc))
    return Path(path)
