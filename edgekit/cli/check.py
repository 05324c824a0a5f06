"""``edgekit check``: will this model run on that target? One reason a line; exit 1 when it will not."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def check(
    model: Path = typer.Argument(..., help="a .tflite or .onnx file (a published one without manifest works too)"),
    target: str = typer.Option(..., "--target", "-t", help="a profile name (edgekit targets) or a .toml path"),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Report what will not run or will fall back on the target: ops, op versions, int8, shapes, memory.

    Exit 0 when compatible (warnings allowed), 1 when not, 2 for a bad file or profile.

    Example: edgekit check digits-int8.tflite --target coral-edge-tpu
    """
    from ..targets import check_model

    report = check_model(model, target)
    typer.echo(json.dumps(report.to_dict(), indent=1) if json_out else report.render())
    if not report.compatible:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
