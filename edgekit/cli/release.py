"""``edgekit release``: check, profile and audit a model for a target; write one signed evidence bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def release(
    model: Path = typer.Argument(..., help="the .tflite (its manifest next to it)"),
    target: str = typer.Option(..., "--target", "-t", help="device profile the release is judged against"),
    output: Path = typer.Option(..., "-o", "--output", help="the bundle folder to write"),
    host: Optional[str] = typer.Option(None, "--host", help="user@device: profile there over SSH (else here: "
                                       "then the budget reads 'not measured on T')"),
    ssh_key: Optional[str] = typer.Option(None, "--ssh-key", help="identity file for ssh"),
    ssh_port: Optional[int] = typer.Option(None, "--ssh-port", help="ssh port"),
    ssh_option: List[str] = typer.Option([], "--ssh-option", help="extra ssh -o KEY=VALUE (repeatable)"),
    remote_python: str = typer.Option("python3", "--remote-python", help="python with numpy and ai-edge-litert "
                                      "on the device"),
    eval_data: Optional[Path] = typer.Option(None, "--eval", help="eval data for the audit (with --source)"),
    source: Optional[Path] = typer.Option(None, "--source", help="the Keras model it was converted from (audit)"),
    key: Optional[Path] = typer.Option(None, "--key", help="EC private key (PEM) that signs the bundle"),
    runs: int = typer.Option(200, "--runs", help="timed runs per thread count in the profile"),
    force: bool = typer.Option(False, "--force", "-f", help="replace OUTPUT if it is a bundle folder"),
    json_out: bool = typer.Option(False, "--json", help="print the bundle's summary.json instead of the gate table"),
) -> None:
    """Write MODEL, its manifest, the check, profile and audit reports, a CycloneDX ML-BOM and a summary, signed.

    Exit 1 when a gate fails (the failing checks listed; the bundle is still written), 2 for bad input.

    Example: edgekit release digits-int8.tflite --target raspberry-pi-4 --key key.pem -o release/
    """
    from ..release import bundle

    ssh = dict(key=ssh_key, port=ssh_port, options=list(ssh_option), python=remote_python)
    summary = bundle.build_release(model, target, output, host=host, ssh=ssh, eval_data=eval_data, source=source,
                                   key=key, runs=runs, force=force)
    if json_out:
        typer.echo(json.dumps(summary, default=str))
    else:
        for g in summary["gates"]:
            typer.echo(f"{g['name']:7} {g['status']:13} {g['detail']}")
        typer.echo(f"wrote {output} ({'signed' if summary['signed'] else 'UNSIGNED: pass --key to sign it'})")
    bundle.enforce(summary)


def register(app: typer.Typer) -> None:
    app.command("release")(release)
