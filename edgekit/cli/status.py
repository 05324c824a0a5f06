"""``edgekit status``: what a device store serves, its candidate, its history and recent incidents."""

from __future__ import annotations

import json

import typer


def status(
    store: str = typer.Option(..., "--store", help="the store folder"),
    history: int = typer.Option(50, "--history", help="how many history events to show"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object: active, candidate, history, incidents"),
) -> None:
    """Show the active version (verified now), the candidate and its canary figures, history and incidents.

    Example: edgekit status --store /var/lib/app/models --json
    """
    from ..store import ops

    doc = ops.status(store, history=history)
    typer.echo(json.dumps(doc, default=str) if json_out else ops.render_status(doc))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
