"""``edgekit fleet ...``: many devices' stores judged together (status, incidents; deploy by rings).

The sub-app is ``fleet_app``; other modules add their commands to it (``fleet_app.command("deploy")``).
"""

from __future__ import annotations

import typer

fleet_app = typer.Typer(name="fleet", help="Judge many devices together: status, incidents (inventory: a TOML file).",
                        no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def register(app: typer.Typer) -> None:
    app.add_typer(fleet_app, name="fleet")
