"""``edgekit recipes``: list the conversion recipes that ship with edgekit (targets: cli/targets.py)."""

from __future__ import annotations

import typer

from ..recipes import list_recipes, load_recipe


def recipes() -> None:
    """List the conversion recipes in converters/ (pass one to convert --recipe).

    Example: edgekit recipes
    """
    for name in list_recipes():
        r = load_recipe(name)
        typer.echo(f"{name:16} {r.description}")
        onnx = f"{r.onnx.summary()}. {r.onnx.note}".rstrip(". ") + "." if r.onnx else "no ONNX form (.tflite only)."
        typer.echo(f"{'':16} ONNX: {onnx}")


def register(app: typer.Typer) -> None:
    app.command("recipes")(recipes)
