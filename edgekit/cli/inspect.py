"""``edgekit inspect``: what a .tflite holds (I/O, ops, size, XNNPACK, manifest), no TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def inspect(
    model: Path = typer.Argument(..., help="a .tflite or .onnx file (with or without an edgekit manifest)"),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    xnnpack: bool = typer.Option(True, "--xnnpack/--no-xnnpack",
                                 help="Load the model in a child process to see whether XNNPACK takes it."),
) -> None:
    """Show a model's inputs and outputs, op histogram with versions, custom ops, size and XNNPACK verdict.

    For .onnx: opset, IR version, op histogram, initializer sizes, float or QDQ.

    Example: edgekit inspect digits-int8.tflite --json
    """
    from ..inspection import inspect_model, render_inspect

    doc = inspect_model(model, xnnpack=xnnpack)
    typer.echo(json.dumps(doc, indent=1) if json_out else render_inspect(doc))


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
