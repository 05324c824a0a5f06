"""``edgekit audit``: the deployment safety report of a converted model and its guard (HTML + edgekit.audit/1 JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def _summary(doc: dict) -> str:
    from ..audit.report_html import _fig, _thr

    lines = [f"audit of {doc['model']['file']}: reference = {doc['reference']['kind']} "
             f"({doc['reference']['samples']} eval samples)"]
    for c in doc["checks"]:
        mark = "ok  " if c["passed"] else ("FAIL" if c["gate"] else "weak")
        lines.append(f"  {mark} {c['name']:32} {_fig(c):>12}  {_thr(c)}")
    v = doc["verdict"]
    lines.append("verdict: PASS" if v["passed"] else f"verdict: FAIL ({', '.join(v['failed'])})")
    return "\n".join(lines)


def audit(
    model: Path = typer.Argument(..., help="A .tflite with its manifest (edgekit convert or edgekit adopt)."),
    source: Optional[Path] = typer.Option(None, "--source", help="The Keras model it was converted from (.keras "
                                          "or .h5): adds transfer attacks and source comparisons."),
    eval_data: Path = typer.Option(..., "--eval", help="Eval data (.npy/.npz/image folder); labels y optional."),
    target: Optional[str] = typer.Option(None, "--target", help="Device profile whose [audit] table sets thresholds."),
    ood: List[Path] = typer.Option([], "--ood", help="Out-of-distribution data the guard should flag (repeatable)."),
    calibration: Optional[Path] = typer.Option(None, "--calibration", help="Calibration data (leakage check, record)."),
    train: Optional[Path] = typer.Option(None, "--train", help="Training data (leakage check, record)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="HTML report (default: MODEL.audit.html)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the edgekit.audit/1 JSON document here."),
    profile: Optional[Path] = typer.Option(None, "--profile", help="A profile result JSON to show in the report."),
    governance: Optional[Path] = typer.Option(None, "--governance", help="TOML with declared sources and licenses."),
    eval_source: Optional[str] = typer.Option(None, "--eval-source", help="Where the eval data comes from."),
    eval_license: Optional[str] = typer.Option(None, "--eval-license", help="The eval data's license."),
    calibration_source: Optional[str] = typer.Option(None, "--calibration-source",
                                                     help="Where the calibration data comes from."),
    calibration_license: Optional[str] = typer.Option(None, "--calibration-license",
                                                      help="The calibration data's license."),
    model_license: Optional[str] = typer.Option(None, "--model-license", help="The model's license."),
    target_fpr: Optional[float] = typer.Option(None, "--target-fpr", help="FPR for the suggested thresholds (0.01)."),
    max_class_drop: Optional[float] = typer.Option(None, "--max-class-drop", help="Worst class drop, points (5)."),
    groups: Optional[Path] = typer.Option(None, "--groups", help="One group label per eval sample (.npy, or .txt one "
                                          "per line); default: the eval .npz's array 'group'. Accuracy per group."),
    max_group_gap: Optional[float] = typer.Option(None, "--max-group-gap", help="A group behind the other samples, "
                                                  "points (5)."),
    max_accuracy_drop: Optional[float] = typer.Option(None, "--max-accuracy-drop", help="Clean drop, points (2)."),
    min_detection: Optional[float] = typer.Option(None, "--min-detection", help="Guard detection per OOD set (0.95)."),
    max_fpr: Optional[float] = typer.Option(None, "--max-fpr", help="Guard false positives on clean data (0.02)."),
    write_threshold: bool = typer.Option(False, "--write-threshold",
                                         help="Store the suggested guard thresholds in the manifest."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice (noise, subsets, PGD starts)."),
) -> None:
    """Test the converted model and its guard; exit 0 if every check passes, 1 if one fails, 2 for bad input.

    Example: edgekit audit digits-int8.tflite --source digits.keras --eval eval.npz --calibration calib.npz -o audit.html --json audit.json

    Without --source (an adopted file): edgekit audit digits-int8.tflite --eval eval.npz

    Per group (site, camera...; fails when one is more than 5 points behind the rest):
    edgekit audit digits-int8.tflite --source digits.keras --eval eval.npz --groups site.txt --max-group-gap 5
    """
    from ..audit.run import run_audit
    from ..audit.report_html import write_report
    from ..audit.schema import to_json
    from ..fsutil import atomic_write_text

    doc = run_audit(
        model, source, eval_data, target=target, ood=ood, calibration=calibration, train=train,
        thresholds={"target_fpr": target_fpr, "max_class_drop_points": max_class_drop,
                    "max_accuracy_drop_points": max_accuracy_drop, "min_ood_detection": min_detection,
                    "max_clean_fpr": max_fpr, "max_group_gap_points": max_group_gap},
        governance_file=governance,
        declared={"eval_source": eval_source, "eval_license": eval_license, "calibration_source": calibration_source,
                  "calibration_license": calibration_license, "model_license": model_license},
        profile=profile, write_threshold=write_threshold, seed=seed, groups=groups)
    html_path = output or model.with_name(model.stem + ".audit.html")
    write_report(doc, html_path)
    if json_path is not None:
        atomic_write_text(json_path, to_json(doc))
    typer.echo(_summary(doc))
    typer.echo(f"report: {html_path}" + (f", {json_path}" if json_path else ""))
    if not doc["verdict"]["passed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)
