"""``edgekit fleet ...`` and ``edgekit incidents``: many devices' stores judged together (status, incidents;
deploy by rings).

The sub-app is ``fleet_app``; other modules add their commands to it (``fleet_app.command("deploy")``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

fleet_app = typer.Typer(name="fleet", help="Judge many devices together: status, incidents, ring deploys "
                        "(inventory: a TOML file of devices; see docs/fleet.md).", no_args_is_help=True, add_completion=False,
                        rich_markup_mode=None)

INVENTORY_HELP = ("the inventory: a TOML file of [[device]] tables (name, host, port, user, key, store, python, "
                  "tags, ring)")


def _progress(label: str, total: int, quiet: bool):
    """A line per device on stderr as each answers (when stderr is a terminal, or never with --json)."""
    done = [0]

    def on_done(ans) -> None:
        done[0] += 1
        if not quiet and sys.stderr.isatty():
            what = "ok" if ans.ok else f"FAILED: {ans.error}"
            print(f"[{done[0]}/{total}] {label} {ans.device.name}: {what} ({ans.elapsed_s:.2f} s)", file=sys.stderr)

    return on_done


@fleet_app.command("status")
def status(
    inventory: Path = typer.Option(..., "--inventory", "-i", help=INVENTORY_HELP),
    json_out: bool = typer.Option(False, "--json", help="one JSON object: devices, rings, tags, versions, outliers"),
    report: Optional[Path] = typer.Option(None, "--report", help="also write an HTML report with plots over time"),
    timeout: float = typer.Option(30.0, "--timeout", help="seconds per device (ssh connect and answer)"),
    max_psi: float = typer.Option(0.25, "--max-psi", help="an input with PSI drift over this is unhealthy"),
    max_ood_share: float = typer.Option(0.25, "--max-ood-share", help="OOD share of the recent window over this "
                                        "is unhealthy"),
    max_error_rate: float = typer.Option(0.05, "--max-error-rate", help="invoke/output errors per call over this "
                                         "is unhealthy"),
    stale: float = typer.Option(3600.0, "--stale", help="a health snapshot older than this many seconds is a warning"),
) -> None:
    """Gather every device's store status, health snapshot and incident counts over SSH, in parallel.

    Shows versions, canaries, rollbacks, drift, OOD and incident rates per device, ring and tag, and flags
    outliers against the rest of the fleet. Exit 1 when a device is unhealthy or unreachable.

    Example: edgekit fleet status --inventory fleet.toml --report fleet.html
    """
    from ..fleet.inventory import load_inventory
    from ..fleet.report_html import write_fleet_report
    from ..fleet.status import Limits, fleet_status, render

    inv = load_inventory(inventory)
    limits = Limits(max_psi=max_psi, max_ood_share=max_ood_share, max_error_rate=max_error_rate, stale_s=stale)
    doc = fleet_status(inv, timeout_s=timeout, limits=limits,
                       on_done=_progress("status", len(inv.devices), json_out))
    if report:
        write_fleet_report(doc, report)
    if json_out:
        typer.echo(json.dumps(doc, default=str))
    else:
        typer.echo(render(doc) + (f"\nreport: {report}" if report else ""))
    if not doc["ok"]:
        raise typer.Exit(1)


@fleet_app.command("incidents")
def incidents(
    inventory: Path = typer.Option(..., "--inventory", "-i", help=INVENTORY_HELP),
    out: Path = typer.Option(Path("fleet-incidents"), "--out", "-o", help="folder of the archive, the cursors and "
                             "the reports (kept between runs: each run pulls only what is new)"),
    since: Optional[str] = typer.Option(None, "--since", help="skip records older than this: an ISO time or an age "
                                        "(30m, 2h, 1d)"),
    bucket: int = typer.Option(60, "--bucket", help="minutes per time bucket in the groups"),
    timeout: float = typer.Option(60.0, "--timeout", help="seconds per device"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Pull each device's NEW incident records (a cursor per device: nothing twice), archive and group them.

    Records a device's log rotated out before they were pulled are counted as lost. Exit 1 when a device
    could not be reached (the others are pulled and their cursors saved).

    Example: edgekit fleet incidents --inventory fleet.toml -o incidents/ --since 1d
    """
    from ..fleet.incidents import pull_fleet, render
    from ..fleet.inventory import load_inventory

    _check_bucket(bucket)
    inv = load_inventory(inventory)
    doc = pull_fleet(inv, out, since=since, timeout_s=timeout, bucket_minutes=bucket,
                     on_done=_progress("incidents", len(inv.devices), json_out))
    typer.echo(json.dumps(doc, default=str) if json_out else render(doc) + f"\nreport: {out / 'report.html'}")
    if doc["failed"]:
        raise typer.Exit(1)


def incidents_file(
    log: Path = typer.Argument(..., help="an incident log (incidents.jsonl, with its .1 .2 backups) or a store folder"),
    since: Optional[str] = typer.Option(None, "--since", help="skip records older than this (ISO time or 30m/2h/1d)"),
    bucket: int = typer.Option(60, "--bucket", help="minutes per time bucket"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="keep a cursor and an archive here: each run then "
                                       "reports only what is new"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Group one local incident log by kind, model version, input and time (what fleet incidents does per device).

    Example: edgekit incidents /var/lib/app/models/incidents.jsonl --since 2h
    """
    from ..fleet.incidents import local_log, render

    _check_bucket(bucket)
    doc = local_log(log, since=since, bucket_minutes=bucket, out=out)
    typer.echo(json.dumps(doc, default=str) if json_out else render(doc))


def _check_bucket(bucket: int) -> None:
    from ..errors import UsageError

    if bucket < 1:
        raise UsageError(f"--bucket must be at least 1 minute, got {bucket}")


from .fleet_deploy import add_deploy  # noqa: E402 - the sub-app first, then the modules that add to it

add_deploy(fleet_app)


def register(app: typer.Typer) -> None:
    app.add_typer(fleet_app, name="fleet")
