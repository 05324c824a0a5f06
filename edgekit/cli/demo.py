"""``edgekit demo``: train, convert, guard and profile a digits model, offline."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for the demo's models and reports."),
    epochs: int = typer.Option(12, "--epochs", help="Training epochs for the digits CNN."),
) -> None:
    """Run the whole trip on scikit-learn's bundled digits: no arguments, no network.

    Example: edgekit demo
    """
    from ..demo import run_demo

    run_demo(out, epochs=epochs, echo=typer.echo)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
