"""The audit as one self-contained HTML page: verdict, every check with its threshold, inline SVG plots.

Plots (drawn with the profile report's SVG helpers, so both reports look alike):
accuracy against strength per perturbation and per attack (source solid, converted
dashed), the guard's ROC per signal, per-class accuracy bars. No network, no JavaScript.

Example:
    >>> write_report(doc, "audit.html")   # doctest: +SKIP
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from ..profile.report import COLORS, CSS, H, M, W, _axes, _svg, _table

_esc = html.escape


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _fig(c: dict[str, Any]) -> str:
    v = c["value"]
    if v is None:
        return "n/a"
    return f"{100 * v:.1f}%" if c["unit"] == "share" else f"{v:.2f} {c['unit']}"


def _thr(c: dict[str, Any]) -> str:
    t = c["threshold"]
    return f"{c['op']} {100 * t:g}%" if c["unit"] == "share" else f"{c['op']} {t:g} {c['unit']}"


def line_svg(series: list[tuple[str, list[tuple[float, float]], str, bool]], title: str, x_label: str,
             y_label: str = "accuracy", y_range: tuple[float, float] = (0.0, 1.0)) -> str:
    """Lines through (x, y) points; each series is (name, points, color, dashed)."""
    xs = [x for _, pts, _, _ in series for x, _ in pts]
    x_lo, x_hi = min(xs), max(xs)
    if x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    parts, sx, sy = _axes(x_lo, x_hi, y_range[0], y_range[1], x_label, y_label)
    for i, (name, pts, color, dashed) in enumerate(series):
        pts = sorted(pts)
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(f'<polyline class="curve" points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"><title>{_esc(name)}: '
                  f'{x:g} -> {y:.3f}</title></circle>' for x, y in pts]
        parts.append(f'<text x="{W - M["r"] - 8}" y="{M["t"] + 16 + 14 * i}" text-anchor="end" fill="{color}">'
                     f'{_esc(name)}</text>')
    return _svg(parts, title)


def bars_svg(groups: list[str], series: list[tuple[str, list[float], str]], title: str, y_label: str,
             what: str = "class") -> str:
    """Grouped bars in [0, 1]: one group per ``what`` (a class; centred on its index tick), one bar per series."""
    n, k = len(groups), len(series)
    # 1.2: room for the legend above full bars; named classes get their names under the index ticks instead
    parts, sx, sy = _axes(-0.5, n - 0.5, 0.0, 1.2, what if groups == [str(i) for i in range(n)] else "", y_label)
    for g, name in enumerate(groups):
        for j, (sname, values, color) in enumerate(series):
            x0 = sx(g - 0.4 + 0.8 * j / k)
            width = sx(g - 0.4 + 0.8 * (j + 1) / k) - x0 - 1
            v = values[g]
            parts.append(f'<rect class="bar" x="{x0:.1f}" y="{sy(v):.1f}" width="{max(width, 1):.1f}" '
                         f'height="{sy(0) - sy(v):.1f}" fill="{color}"><title>{_esc(sname)} {what} {_esc(name)}: '
                         f'{v:.3f}</title></rect>')
        if name != str(g):  # the axis ticks already show the index
            parts.append(f'<text x="{sx(g):.1f}" y="{H - M["b"] + 30}" text-anchor="middle">{_esc(name)}</text>')
    for j, (sname, _, color) in enumerate(series):
        parts.append(f'<text x="{W - M["r"] - 8}" y="{M["t"] + 14 + 14 * j}" text-anchor="end" '
                     f'fill="{color}">{_esc(sname)}</text>')
    return _svg(parts, title)


def _checks(doc: dict[str, Any]) -> str:
    rows = []
    for c in doc["checks"]:
        verdict = "PASS" if c["passed"] else ("FAIL" if c["gate"] else "WEAK (not gating)")
        cls = "pass" if c["passed"] else "fail"
        rows.append(f"<tr><td>{_esc(c['name'])}</td><td>{_esc(_fig(c))}</td><td>{_esc(_thr(c))}</td>"
                    f"<td class='{cls}'>{verdict}</td><td style='text-align:left'>{_esc(c['note'])}</td></tr>")
    return ("<table><thead><tr><th>check</th><th>figure</th><th>threshold</th><th>verdict</th><th>what</th></tr>"
            f"</thead><tbody>{''.join(rows)}</tbody></table>")


def _deviation(sec: dict[str, Any], by_input: dict[str, dict[str, list]], axis: str) -> str:
    """Output-deviation rows (output_audit.py): per input and what was done to it, each output's figures."""
    kinds = sec["outputs"]
    out = [f"<p>{_esc(sec['method'])}. {_esc(sec.get('sampled', ''))}</p>",
           _table(["output", "kind", "what is measured"], [[n, o["kind"], o["measured"]] for n, o in kinds.items()])]
    for name, plans in by_input.items():
        for what, (unit, pts) in plans.items():
            out.append(f"<h3>input {_esc(name)}: {_esc(what)}</h3>")
            series = [(o, [(q[axis], min(1.0, q["outputs"][o]["relative_error"])) for q in pts], COLORS[i % 6],
                       False) for i, o in enumerate(kinds)]
            out.append(line_svg(series, f"relative error against {what} {axis}", unit, "relative error (capped 1)"))
            out.append(_table([axis, "output", "relative error", "SQNR dB", "top-1 agreement", "flagged by guard"],
                              [[q[axis], o, f"{v['relative_error']:.4f}",
                                "-" if v["sqnr_db"] is None else f"{v['sqnr_db']:.1f}",
                                _pct(v.get("top1_agreement")), _pct(q["flagged"])]
                               for q in pts for o, v in q["outputs"].items()]))
    return "".join(out)


def _accuracy(sec: dict[str, Any]) -> str:
    return (f"<p>source {_pct(sec['source'])}, converted {_pct(sec['converted'])}, agreement "
            f"{_pct(sec['agreement'])}.</p>")


def _robustness(sec: dict[str, Any]) -> str:
    if sec.get("mode") == "output_deviation":
        return _deviation(sec, {n: {p: (v["unit"], v["points"]) for p, v in i["perturbations"].items()}
                                for n, i in sec["inputs"].items()}, "strength")
    out = [f"<p>{_esc(sec['method'])}.{' ' + _esc(sec['note']) if sec.get('note') else ''}</p>"]
    for name, p in sec["perturbations"].items():
        pts = p["points"]
        series = [("converted", [(q["strength"], q["converted"]) for q in pts], COLORS[1], True)]
        if pts and pts[0]["source"] is not None:  # None: audited without a source
            series.insert(0, ("source", [(q["strength"], q["source"]) for q in pts], COLORS[0], False))
        out.append(f"<h3>{_esc(name)}</h3>" + line_svg(series, f"accuracy against {name} strength", p["unit"]))
        out.append(_table(["strength", "source", "converted", "gap (points)", "flagged by guard"],
                          [[q["strength"], _pct(q["source"]), _pct(q["converted"]),
                            "-" if q["gap_points"] is None else f"{q['gap_points']:+.2f}",
                            _pct(q["flagged"])] for q in pts]))
    return "".join(out)


def _adversarial(sec: dict[str, Any]) -> str:
    sampled = sec.get("sampled", f"{sec['samples']} samples")  # reports before issue 18 have no "sampled"
    out = [f"<p>{_esc(sec['method'])}; {_esc(sampled)}; clean accuracy source "
           f"{_pct(sec['clean_source'])}, converted {_pct(sec['clean_converted'])}. Epsilon in "
           f"{_esc(sec['epsilon_unit'])}. Transfer = converted drop / source drop.</p>"]
    series = []
    for i, (name, rows) in enumerate(sec["attacks"].items()):
        series += [(f"{name} source", [(r["epsilon"], r["source"]) for r in rows], COLORS[2 * i % 6], False),
                   (f"{name} converted", [(r["epsilon"], r["converted"]) for r in rows], COLORS[(2 * i + 1) % 6], True)]
    out.append(line_svg(series, "accuracy under attack", "epsilon (input units)"))
    out.append(_table(["attack", "epsilon", "share of range", "source", "converted", "source drop", "converted drop",
                       "transfer"],
                      [[name, r["epsilon"], r["epsilon_share"], _pct(r["source"]), _pct(r["converted"]),
                        f"{r['source_drop_points']:.1f}", f"{r['converted_drop_points']:.1f}",
                        "-" if r["transfer"] is None else f"{r['transfer']:.2f}"]
                       for name, rows in sec["attacks"].items() for r in rows]))
    return "".join(out)


def _blackbox(sec: dict[str, Any]) -> str:
    if sec.get("mode") == "output_deviation":
        return _deviation(sec, {n: {"square attack": (sec["epsilon_unit"], rows)}
                                for n, rows in sec["attacks"]["square"].items()}, "epsilon")
    rows = sec["attacks"]["square"]
    return (f"<p>{_esc(sec['method'])}; {_esc(sec['sampled'])}; clean accuracy converted "
            f"{_pct(sec['clean_converted'])}. Epsilon in {_esc(sec['epsilon_unit'])}.</p>"
            + line_svg([("square", [(r["epsilon"], r["converted"]) for r in rows], COLORS[1], True)],
                       "converted accuracy under a query-only attack", "epsilon (input units)")
            + _table(["epsilon", "share of range", "converted", "drop (points)", "flagged by guard"],
                     [[r["epsilon"], r["epsilon_share"], _pct(r["converted"]), f"{r['drop_points']:.1f}",
                       _pct(r["flagged"])] for r in rows]))


def _section(sec: dict[str, Any], render) -> str:
    """A section the audit skipped (no source, or its process crashed) says why instead of its tables."""
    if "skipped" in sec:
        return f"<p>Skipped: {_esc(sec['skipped'])}.</p>"
    return render(sec)


def _classes(sec: dict[str, Any]) -> str:
    rows = sec["classes"]
    names = [r["label"] for r in rows]
    svg = bars_svg(names, [("source", [r["source"] for r in rows], COLORS[0]),
                           ("converted", [r["converted"] for r in rows], COLORS[1])], "accuracy per class", "accuracy")
    return (svg + f"<p>One sample of the smallest class is {_esc(str(sec['resolution_points']))} points.</p>"
            + _table(["class", "samples", "source", "converted", "drop (points)"],
                     [[r["label"], r["samples"], _pct(r["source"]), _pct(r["converted"]), f"{r['drop_points']:+.2f}"]
                      for r in rows]))


def _groups(sec: dict[str, Any]) -> str:
    """Per group of the eval data: accuracy with its interval, gap to the other samples, agreement, guard FPR."""
    def ci(r, key):
        return "-" if r[key] is None else f"{_pct(r[key])} [{_pct(r[key + '_ci95'][0])}, {_pct(r[key + '_ci95'][1])}]"

    def gap(v):
        return "-" if v is None else f"{v:+.2f}"

    largest = sec["largest_gap"]
    text = "; ".join(f"{k}: group {v['group']} {v['gap_points']:+.2f} points" for k, v in largest.items() if v)
    rows = [[r["group"] + ("" if r["enough"] else " (too few)"), r["samples"], ci(r, "source"), ci(r, "converted"),
             gap(r["source_gap_points"]), gap(r["converted_gap_points"]), _pct(r["agreement"]), _pct(r["guard_fpr"])]
            for r in sec["groups"]]
    return (f"<p>{_esc(sec['method'])}. Largest gap: {_esc(text or 'not measurable')}."
            + (f" Too few samples (under {sec['min_samples']}): {_esc(', '.join(sec['too_few']))}." if sec["too_few"]
               else "") + "</p>"
            + bars_svg([r["group"] for r in sec["groups"]],
                       [(k, [r[k] or 0.0 for r in sec["groups"]], COLORS[i])
                        for i, k in enumerate(("source", "converted")) if sec["groups"][0][k] is not None],
                       "accuracy per group", "accuracy", "group")
            + _table(["group", "samples", "source (95% CI)", "converted (95% CI)", "source gap", "converted gap",
                      "agreement", "guard FPR"], rows))


def _guard(sec: dict[str, Any]) -> str:
    if "skipped" in sec:
        return f"<p>Skipped: {_esc(sec['skipped'])}.</p>"
    d = sec["default_policy"]
    out = [f"<p>{_esc(sec['method'])}.</p>",
           _table(["set", "samples", "flagged by EdgeModel (default Policy)"],
                  [["clean eval (false positives)", d["clean_samples"], _pct(d["false_positive_rate"])]]
                  + [[k, sec["sets"][k], _pct(v)] for k, v in d["detection"].items()])]
    sig_rows = []
    for name, s in sec["signals"].items():
        for set_name, v in s["sets"].items():
            sig_rows.append([name, set_name, f"{v['auc']:.3f}", _pct(v["detection"]), f"{s['threshold']:.4g}",
                             _pct(s["measured_fpr"])])
    label = {"msp": "1 - max softmax probability", "energy": "energy -logsumexp(logits)", None: "none"}
    out.append(f"<h3>Signals</h3><p>input = the manifest's OOD score; output = {_esc(label[sec['output_signal']])}; "
               "combined = max of both, each in multiples of its clean tail.</p>")
    out.append(_table(["signal", "OOD set", "ROC AUC", "detected at threshold", "threshold", "held-out FPR"],
                      sig_rows))
    for name, s in sec["signals"].items():
        series = [(k, [tuple(p) for p in pts], COLORS[i % 6], False) for i, (k, pts) in enumerate(s["roc"].items())]
        out.append(f"<h3>ROC, {_esc(name)} signal</h3>"
                   + line_svg(series, f"ROC {name}", "false-positive rate", "true-positive rate"))
    sug = sec["suggested"]
    out.append("<h3>Suggested thresholds</h3>" + _table(
        ["target FPR", "ood_threshold", "output signal", "output_threshold", "held-out FPR", "rule"],
        [[_pct(sug["target_fpr"]), sug["ood_threshold"], sug["output_signal"], sug["output_threshold"],
          _pct(sug["measured_fpr"]), sug.get("rule", "")]]))
    if sec.get("written_to"):
        out.append(f"<p>Written to {_esc(sec['written_to'])}.</p>")
    return "".join(out)


def _backdoor(sec: dict[str, Any]) -> str:
    if "skipped" in sec:
        return f"<p>Skipped: {_esc(sec['skipped'])}.</p>"
    w = sec["worst"]
    top = sorted(sec["stamps"], key=lambda r: -r["success"])[:8]
    return (f"<p>{len(sec['stamps'])} stamps on {_esc(str(sec['samples']))} clean samples. "
            "Suspicious when one stamp sends "
            f"at least {_pct(sec['min_success'])} of the other samples to one class with at least "
            f"{_pct(sec['min_concentration'])} of its flips: <b>{'SUSPICIOUS' if sec['suspicious'] else 'no trigger found'}"
            f"</b> (strongest: {_esc(str(w['size']))}px {_esc(w['value'])} at {_esc(w['where'])} -> class "
            f"{_esc(str(w.get('target_label')))}).</p>"
            + _table(["where", "size px", "value", "flip rate", "target", "concentration", "success"],
                     [[r["where"], r["size"], r["value"], _pct(r["flip_rate"]), r["target"], _pct(r["concentration"]),
                       _pct(r["success"])] for r in top]))


def _data(sec: dict[str, Any]) -> str:
    if "skipped" in sec:
        return f"<p>Skipped: {_esc(sec['skipped'])}.</p>"
    rows = [[role, v["eval_samples"], v["exact"], v["near"], _pct(v["share"])]
            for role, v in sec["leakage"].items() if isinstance(v, dict)]
    out = ["<h3>Leakage (eval samples also in)</h3>" + (_table(["data", "eval samples", "exact", "near", "share"], rows)
                                                        if rows else f"<p>{_esc(sec['leakage'].get('note', ''))}</p>")]
    for role, b in sec["balance"].items():
        out.append(f"<p>Label balance, {_esc(role)}: smallest/largest class {b['min_over_max']:.2f}; "
                   f"{_esc(', '.join(f'{k}: {v}' for k, v in b['counts'].items()))}</p>")
    out.append(_table(["data", "samples", "constant samples", "outside the value range"],
                      [[role, o["samples"], o["constant"], o.get("out_of_range", "-")]
                       for role, o in sec["odd_samples"].items()]))
    return "".join(out)


def _governance(sec: dict[str, Any]) -> str:
    run = sec["run"]
    out = [_table(["role", "path", "samples", "sample shape", "labels", "samples sha256", "file sha256", "bytes",
                   "declared source", "license"],
                  [[d["role"], d["path"] or "(array)", d["samples"], d["sample_shape"], d["labels"],
                    d["samples_sha256"][:16], (d.get("file_sha256") or "-")[:16], d.get("file_bytes", "-"),
                    d["declared_source"] or "not declared", d["declared_license"] or "not declared"]
                   for d in sec["datasets"]]),
           f"<p>Model license: {_esc(sec['model_license'] or 'not declared')}. Audit run by "
           f"{_esc(str(run['user']))} on {_esc(run['host'])} ({_esc(run['platform'])}) at {_esc(run['time'])}.</p>",
           "<h3>Tools</h3>" + _table(["step", "versions"],
                                      [["conversion", ", ".join(f"{k} {v}" for k, v in sec["conversion_tools"].items())],
                                       ["audit", ", ".join(f"{k} {v}" for k, v in sec["audit_tools"].items())]]),
           f"<h3>NIST AI RMF, MEASURE 2</h3><p>{_esc(sec['nist_ai_rmf']['source'])}</p>",
           _table(["subcategory", "text", "covered", "evidence in this report"],
                  [[r["id"], r["text"], "yes" if r["covered"] else "no",
                    (", ".join(r["evidence"]) + ": " if r["evidence"] else "") + r["how"]]
                   for r in sec["nist_ai_rmf"]["measure_2"]])]
    return "".join(out)


def _model(doc: dict[str, Any]) -> str:
    m, prof = doc["model"], doc.get("profile")
    io = "; ".join(f"{t['name']} {t['shape']} {t['dtype']}" for t in m["inputs"] + m["outputs"])
    out = [_table(["field", "value"], [["file", m["path"]], ["sha256", m["sha256"]], ["size", f"{m['size_bytes']} B"],
                                       ["manifest", m["schema"]], ["recipe", m["recipe"]], ["target", m["target"]],
                                       ["task", m["task"]], ["inputs / outputs", io],
                                       ["calibration samples", m["calibration_samples"]], ["converted", m["created"]],
                                       ["source", (doc["source"] or {}).get("path", "none given")]])]
    if prof:
        out.append("<h3>Latest profile</h3>" + _table(
            ["threads", "p50 ms", "p95 ms", "peak MB"],
            [[r["threads"], r["p50_ms"], r["p95_ms"], r["peak_mb"]] for r in prof["rows"]]))
    else:
        out.append("<p>No profile given (--profile RESULT.json adds the latest one).</p>")
    return "".join(out)


def render_html(doc: dict[str, Any]) -> str:
    v = doc["verdict"]
    title = f"Safety audit: {doc['model']['file']}"
    head = "PASS" if v["passed"] else f"FAIL ({', '.join(v['failed'])})"
    ref = doc["reference"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title><style>{CSS}</style>"
             f"</head><body><h1>{_esc(title)}</h1>",
             f"<p class='{'pass' if v['passed'] else 'fail'}'><b>Verdict: {_esc(head)}</b> "
             f"({_esc(str(v['gating']))} gating checks; created {_esc(doc['created'])}, "
             f"{_esc(str(doc['timings_s'].get('total', '?')))} s)</p>",
             f"<p>Reference: {_esc(ref['note'])}. {_esc(str(ref['samples']))} eval samples"
             f"{'; ' + _esc(ref['subset_note']) if ref.get('subset_note') else ''}; "
             f"value range {_esc(str(ref['value_range']))} "
             f"from {_esc(ref['value_range_from'])}.</p>",
             "<h2>Checks</h2>" + _checks(doc),
             "<h2>Model</h2>" + _model(doc),
             "<h2>Clean accuracy</h2>" + _section(doc["accuracy"], _accuracy),
             "<h2>Robustness</h2>" + _section(doc["robustness"], _robustness),
             "<h2>Adversarial transfer</h2>" + _section(doc["adversarial"], _adversarial),
             "<h2>Black-box attack on the converted file</h2>" + _section(doc.get("blackbox", {"skipped": "not run"}),
                                                                          _blackbox),
             "<h2>Classes</h2>" + _section(doc["classes"], _classes),
             "<h2>Groups</h2>" + _section(doc.get("groups", {"skipped": "not run"}), _groups),
             "<h2>Guard</h2>" + _guard(doc["guard"]),
             "<h2>Backdoor probe</h2>" + _backdoor(doc["backdoor"]),
             "<h2>Data</h2>" + _data(doc["data"]),
             "<h2>Governance</h2>" + _governance(doc["governance"]),
             "</body></html>\n"]
    return "".join(parts)


def write_report(doc: dict[str, Any], path: str | Path) -> Path:
    """Write the HTML page atomically; returns its path."""
    atomic_write_text(path, render_html(doc))
    return Path(path)
