"""``edgekit fleet deploy``: roll a model or release bundle out ring by ring, halting on the first broken ring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def deploy(
    model: Path = typer.Argument(..., help="the model (.tflite or .onnx, manifest next to it) or a release bundle"),
    inventory: Path = typer.Option(..., "--inventory", help="the fleet's inventory (TOML [[device]] tables)"),
    rings: str = typer.Option(..., "--rings", help="rings in order, comma-separated; 'all' = every device not in "
                              "an earlier ring"),
    calls: Optional[int] = typer.Option(None, "--calls", help="canary: compared live calls per device "
                                        "(default 200 when --minutes is not given)"),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="canary: minutes per device"),
    poll: float = typer.Option(10.0, "--poll", help="seconds between two reads of the devices' stores"),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="seconds a ring may take before it counts as "
                                            "broken (default 1800, or the canary's minutes + 10 min)"),
    journal: Optional[Path] = typer.Option(None, "--journal", help="the rollout's journal (default "
                                           "FLEET.rollout-<sha12>.json next to the inventory); the same "
                                           "command resumes from it"),
    trust: List[Path] = typer.Option([], "--trust", "--trusted-key", help="public key (PEM) every store trusts "
                                     "from now on: then only models signed by a trusted key get in (repeatable)"),
    max_disagreement: Optional[float] = typer.Option(None, "--max-disagreement", help="canary budget (share)"),
    max_error_rate: Optional[float] = typer.Option(None, "--max-error-rate", help="canary budget (share)"),
    max_ood_rate: Optional[float] = typer.Option(None, "--max-ood-rate", help="canary budget (share)"),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-latency-ms", help="canary budget on p95 latency"),
    force: bool = typer.Option(False, "--force", help="stage it also where a store marked it bad (rejected or "
                               "cancelled by an earlier rollout); the override is recorded in each store's history"),
    json_out: bool = typer.Option(False, "--json", help="print the rollout's report as JSON"),
) -> None:
    """Deploy to the first ring as a canary, wait until every device there promoted it, then the next ring.

    A device that rejects it (or cannot be reached, or a ring that times out) halts the rollout: the
    ring is put back on its previous version and later rings are never contacted. Each device's app
    (edgekit.store.serve) runs the canary. Exit 0: promoted on every ring; 1: halted; 2: bad input.

    Example: edgekit fleet deploy digits-int8.tflite --inventory fleet.toml --rings canary,early,all --calls 200

    Interrupted (Ctrl-C, a kill)? Run the same command again: it resumes from the journal.
    """
    from ..fleet.inventory import load_inventory
    from ..fleet.rollout import Settings, render, rollout

    budgets = dict(max_disagreement=max_disagreement, max_error_rate=max_error_rate, max_ood_rate=max_ood_rate,
                   max_latency_ms=max_latency_ms)
    settings = Settings(calls=calls, minutes=minutes, budgets=budgets, trust=list(trust), poll_s=poll,
                        timeout_s=timeout, force=force)
    inv = load_inventory(inventory)
    doc = rollout(model, inv, [r.strip() for r in rings.split(",") if r.strip()], settings=settings,
                  journal=journal, emit=lambda line: typer.echo(line, err=True))
    typer.echo(json.dumps(doc, default=str) if json_out else render(doc))
    if doc["state"] != "done":
        raise typer.Exit(1)


def add_deploy(fleet_app: typer.Typer) -> None:
    fleet_app.command("deploy")(deploy)
