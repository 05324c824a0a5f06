"""``edgekit status``: what a device store serves, its candidate, its history and recent incidents."""

from __future__ import annotations

import json

import typer


def status(
    store: str = typer.Option(..., "--store", help="the store folder"),
    history: int = typer.Option(50, "--history", help="how many history events to show"),
    repair: bool = typer.Option(False, "--repair", help="rebuild a missing or damaged index.json from the stored "
                                "versions and the history first (the damaged file is kept beside it)"),
    json_out: bool = typer.Option(False, "--json", help="one JSON object: active, candidate, history, incidents"),
) -> None:
    """Show the active version (verified now), the candidate and its canary figures, history and incidents.

    Example: edgekit status --store /var/lib/app/models --json

    A damaged or lost index.json: edgekit status --store /var/lib/app/models --repair
    """
    from ..store import ops

    doc = ops.status(store, repair=repair, history=history)
    typer.echo(json.dumps(doc, default=str) if json_out else ops.render_status(doc))


def register(app: typer.Typer) -> None:
    app.command("status")(status)
