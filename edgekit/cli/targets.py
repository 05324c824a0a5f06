"""``edgekit targets``: list the device profiles, or show one (a shipped name or a .toml path)."""

from __future__ import annotations

import json
from typing import Optional

import typer


def targets(
    name: Optional[str] = typer.Argument(None, help="a profile name or a .toml path: show that one"),
    json_out: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the device profiles in profiles/ (pass one to --target), or show one profile's facts.

    Example: edgekit targets raspberry-pi-3b
    """
    from ..devices import list_profiles, load_profile

    if name is not None:
        p = load_profile(name)
        if json_out:
            typer.echo(json.dumps(p.to_dict(), indent=1))
            return
        for key, value in p.to_dict().items():
            if value not in (None, "", ()):
                shown = "\n  ".join(value) if key == "sources" else value
                typer.echo(f"{key:20} {shown}")
        return
    profiles = [load_profile(n) for n in list_profiles()]
    if json_out:
        typer.echo(json.dumps([p.to_dict() for p in profiles], indent=1))
        return
    for p in profiles:
        accel = "" if p.accelerator == "none" else p.accelerator
        typer.echo(f"{p.name:22} {p.arch:11} {p.memory_mb:>7g} MB  {p.interpreter:15} {accel:8} {p.description}")


def register(app: typer.Typer) -> None:
    app.command("targets")(targets)
