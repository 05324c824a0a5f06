"""``edgekit fleet ...``: many devices' stores judged together (status, incidents; deploy by rings).

The sub-app is ``fleet_app``; other modules add their commands to it (``fleet_app.command("deploy")``).
"""

from __future__ import annotations

import typer

fleet_app = typer.Typer(name="fleet", help="Many devices together: status, incidents, ring deploys (inventory: a "
                        "TOML file).", no_args_is_help=True, add_completion=False, rich_markup_mode=None)

from .fleet_deploy import add_deploy  # noqa: E402 - the sub-app first, then the modules that add to it

add_deploy(fleet_app)


def register(app: typer.Typer) -> None:
    app.add_typer(fleet_app, name="fleet")
