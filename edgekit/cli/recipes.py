"""``edgekit recipes`` and ``edgekit targets``: list what ships with edgekit."""

from __future__ import annotations

import typer

from ..devices import list_profiles, load_profile
from ..recipes import list_recipes, load_recipe


def recipes() -> None:
    """List the conversion recipes in converters/ (pass one to convert --recipe).

    Example: edgekit recipes
    """
    for name in list_recipes():
        r = load_recipe(name)
        typer.echo(f"{name:16} {r.description}")


def targets() -> None:
    """List the device profiles in profiles/ (pass one to --target).

    Example: edgekit targets
    """
    for name in list_profiles():
        p = load_profile(name)
        budget = f"p95 <= {p.max_latency_ms:g} ms, peak <= {p.max_memory_mb:g} MB" if p.max_latency_ms else ""
        typer.echo(f"{name:22} {p.preferred_recipe:8} {budget:36} {p.description}")


def register(app: typer.Typer) -> None:
    app.command("recipes")(recipes)
    app.command("targets")(targets)
