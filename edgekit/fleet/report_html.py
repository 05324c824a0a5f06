"""The fleet status as one self-contained HTML file: the table, problems, and rates per device over time (inline SVG).

The curves come from each store's health history (STORE/health/history.jsonl, one line per snapshot).
Every string shown may come from a device: all of it is escaped.

Example:
    >>> write_fleet_report(fleet_status(inv), "fleet.html")        # doctest: +SKIP
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from ..profile.report import COLORS, CSS, _axes, _svg, _table

PLOTS = (("flagged_share", "OOD share of the recent window"), ("psi_max", "input drift (PSI, worst channel)"),
         ("error_rate", "error rate (invoke + output per call)"), ("fallback_rate", "fallback rate per call"),
         ("p95_ms", "p95 latency (ms)"))


def series_svg(rows: list[dict[str, Any]], key: str, title: str) -> str | None:
    """One curve per device of ``key`` against minutes before now; None when no device has two points."""
    curves = []
    for r in rows:
        pts = [(p["unix"], float(p[key])) for p in r.get("history") or []
               if isinstance(p.get(key), (int, float)) and isinstance(p.get("unix"), (int, float))]
        if len(pts) >= 2:
            curves.append((r["name"], pts))
    if not curves:
        return None
    t_end = max(t for _, pts in curves for t, _ in pts)
    x_lo = min((t - t_end) / 60 for _, pts in curves for t, _ in pts)
    y_hi = max(v for _, pts in curves for _, v in pts) or 1.0
    parts, sx, sy = _axes(x_lo, 0.0, 0.0, y_hi * 1.05, "minutes before the newest snapshot", title)
    for i, (name, pts) in enumerate(curves):
        color = COLORS[i % len(COLORS)]
        line = " ".join(f"{sx((t - t_end) / 60):.1f},{sy(v):.1f}" for t, v in pts)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{color}" stroke-width="2">'
                     f"<title>{html.escape(name)}</title></polyline>")
        parts.append(f'<text x="{70 + 110 * (i % 5)}" y="{12 + 12 * (i // 5)}" fill="{color}">'
                     f"{html.escape(name[:16])}</text>")
    return _svg(parts, title)


def render_fleet_html(doc: dict[str, Any]) -> str:
    title = f"edgekit fleet status: {doc['inventory']}"
    verdict = "fleet ok" if doc["ok"] else (f"fleet NOT ok: unhealthy {', '.join(doc['unhealthy']) or '-'}; "
                                            f"unreachable {', '.join(doc['unreachable']) or '-'}")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='{'pass' if doc['ok'] else 'fail'}'>{html.escape(verdict)}</p>",
             f"<p>{len(doc['devices'])} devices gathered in {doc['elapsed_s']:.2f} s</p>"]
    rows = []
    for r in doc["devices"]:
        h = r.get("health") or {}
        rows.append([r["name"], r["host"], r["ring"] or "-", ", ".join(r["tags"]) or "-", r["state"],
                     ((r.get("active") or {}).get("sha256") or "-")[:12],
                     (r.get("candidate") or {}).get("sha256", "-")[:12], h.get("calls", "-"),
                     _fmt(h.get("ood_share"), "%"), _fmt(h.get("psi_max")), _fmt(h.get("error_rate"), "%"),
                     _fmt(h.get("fallback_rate"), "%"), _fmt(h.get("latency_p95_ms")),
                     (r.get("incidents") or {}).get("records", "-"), (r.get("rollbacks") or {}).get("automatic", "-")])
    parts.append("<h2>Devices</h2>" + _table(["device", "host", "ring", "tags", "state", "version", "canary", "calls",
                                              "OOD", "PSI", "errors", "fallback", "p95 ms", "incidents",
                                              "auto rollbacks"], rows))
    notes = [(r["name"], r["state"], p) for r in doc["devices"] for p in r["problems"]]
    notes += [(r["name"], "warning", w) for r in doc["devices"] for w in r["warnings"]]
    if notes:
        parts.append("<h2>Problems and warnings</h2><ul>" + "".join(
            f"<li class='{'fail' if s != 'warning' else 'unmeasured'}'>{html.escape(n)}: {html.escape(s)}: "
            f"{html.escape(str(t))}</li>" for n, s, t in notes) + "</ul>")
    for title_, groups in (("Rings", doc["rings"]), ("Tags", doc["tags"])):
        if groups:
            parts.append(f"<h2>{title_}</h2>" + _table(
                ["name", "devices", "healthy", "versions", "median OOD", "max PSI", "incidents", "auto rollbacks"],
                [[k, g["devices"], g["healthy"], "; ".join(f"{v} x{len(d)}" for v, d in g["versions"].items()) or "-",
                  _fmt(g["median_ood_share"], "%"), _fmt(g["max_psi"]), g["incidents"], g["rollbacks"]]
                 for k, g in groups.items()]))
    parts.append("<h2>Over time</h2>")
    drawn = [svg for key, label in PLOTS if (svg := series_svg(doc["devices"], key, label))]
    parts += drawn or ["<p>No device has two health snapshots yet: the curves need the history a serving "
                       "app writes (edgekit.store.serve, every health_every_s seconds).</p>"]
    parts.append("<p>Outliers: modified z-score (median and MAD, scale floored) over the devices with a snapshot, "
                 "z &gt; 3.5 flagged; see docs/fleet.md.</p></body></html>\n")
    return "".join(parts)


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:.1%}" if unit == "%" else f"{v:.2f}"


def write_fleet_report(doc: dict[str, Any], path: str | Path) -> Path:
    atomic_write_text(path, render_fleet_html(doc))
    return Path(path)
