"""``edgekit compare``: side-by-side deltas of two profile results, with a noise test."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def compare(
    a: Path = typer.Argument(..., help="profile result A (edgekit profile --json)"),
    b: Path = typer.Argument(..., help="profile result B"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the comparison as JSON here"),
) -> None:
    """Compare two profiles (fp32 against int8, one device against another); says what lies inside noise.

    Example: edgekit compare digits-fp32.json digits-int8.json
    """
    import json

    from ..fsutil import atomic_write_text
    from ..profile.comparison import compare as compare_docs, render_comparison
    from ..profile.schema import load

    cmp = compare_docs(load(a), load(b))
    if json_out:
        atomic_write_text(json_out, json.dumps(cmp, indent=1) + "\n")
    typer.echo(render_comparison(cmp))


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
