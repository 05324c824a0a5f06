"""The audit's part of ``edgekit demo``: the safety report of the int8 digits model.

Example:
    >>> print(audit_demo(split, "demo-out/digits-int8.tflite", "demo-out/digits.keras", "demo-out"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from ..fsutil import atomic_write_text


def audit_demo(split, int8_path: str | Path, source_path: str | Path, out_dir: str | Path) -> str:
    """Audit the int8 model on the held-out digits; write audit.html / audit.json; a text block to print."""
    from .run import run_audit
    from .report_html import write_report
    from .schema import to_json

    out = Path(out_dir)
    doc = run_audit(int8_path, source_path, (split.x_test, split.y_test),
                    calibration=split.x_calib, train=(split.x_train, split.y_train),
                    declared={"eval_source": "scikit-learn load_digits (bundled), stratified held-out split",
                              "model_license": "Apache-2.0 (trained by the demo)"})
    html, js = write_report(doc, out / "audit.html"), out / "audit.json"
    atomic_write_text(js, to_json(doc))
    g = doc["guard"]["default_policy"]
    strongest = max((r for rs in doc["adversarial"]["attacks"].values() for r in rs),
                    key=lambda r: r["source_drop_points"])
    noise_gap = max(abs(p["gap_points"]) for p in doc["robustness"]["perturbations"]["gaussian_noise"]["points"])
    v = doc["verdict"]
    lines = [
        f"audit: {len(doc['checks'])} checks on the int8 model, {doc['timings_s']['total']:.0f} s: "
        + ("PASS" if v["passed"] else f"FAIL ({', '.join(v['failed'])})"),
        f"  guard detection: {', '.join(f'{k} {s:.0%}' for k, s in g['detection'].items())}; "
        f"false positives on clean digits {g['false_positive_rate']:.1%}",
        f"  strongest attack (PGD/FGSM eps {strongest['epsilon']:g}): source top-1 -{strongest['source_drop_points']:.0f} "
        f"points, int8 -{strongest['converted_drop_points']:.0f} (transfer {strongest['transfer']:.2f}); "
        f"largest int8-vs-float gap under noise {noise_gap:.1f} points",
        f"  backdoor probe: {'SUSPICIOUS' if doc['backdoor']['suspicious'] else 'no trigger found'}; "
        f"worst class drop {doc['classes']['worst']['drop_points']:.1f} points (class {doc['classes']['worst']['label']})",
        f"  report: {html} (JSON: {js})",
    ]
    return "\n".join(lines)
