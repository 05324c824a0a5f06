"""``edgekit incidents FILE``: one local incident log grouped by kind, version, input and time."""

from __future__ import annotations

import typer

from .fleet import incidents_file


def register(app: typer.Typer) -> None:
    app.command("incidents")(incidents_file)
