"""``edgekit rollback``: go back to the store's previous good version now."""

from __future__ import annotations

import json

import typer


def rollback(
    store: str = typer.Option(..., "--store", help="the store folder"),
    reason: str = typer.Option("rolled back by hand", "--reason", help="why (kept in the history)"),
    json_out: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Activate the newest previous good version that verifies; the current one is marked bad.

    Example: edgekit rollback --store /var/lib/app/models --reason "complaints from the field"
    """
    from ..store import ops

    doc = ops.rollback(store, reason)
    typer.echo(json.dumps(doc) if json_out else f"rolled back to {doc['sha256'][:12]} (was {str(doc['previous'])[:12]})")


def register(app: typer.Typer) -> None:
    app.command("rollback")(rollback)
