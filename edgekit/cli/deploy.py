"""``edgekit deploy``: put a model into a versioned store on the device, verified, then activate or stage it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer


def deploy(
    model: Path = typer.Argument(..., help="the .tflite (its manifest, and signature, next to it)"),
    store: str = typer.Option(..., "--store", help="the store folder (on the device with --host)"),
    canary_calls: Optional[int] = typer.Option(None, "--canary-calls", help="stage as candidate: shadow N live calls"),
    canary_minutes: Optional[float] = typer.Option(None, "--canary-minutes", help="stage as candidate: for M minutes"),
    trust: List[Path] = typer.Option([], "--trust", help="public key (PEM) the store trusts from now on; "
                                     "then only models signed by a trusted key get in (repeatable)"),
    manifest: Optional[Path] = typer.Option(None, "--manifest", help="the manifest (default: next to MODEL)"),
    signature: Optional[Path] = typer.Option(None, "--signature", help="the signature (default: MODEL.sig)"),
    target: Optional[str] = typer.Option(None, "--target", help="device profile whose budgets the canary uses"),
    max_disagreement: Optional[float] = typer.Option(None, "--max-disagreement", help="canary budget (share)"),
    max_error_rate: Optional[float] = typer.Option(None, "--max-error-rate", help="canary budget (share)"),
    max_ood_rate: Optional[float] = typer.Option(None, "--max-ood-rate", help="canary budget (share)"),
    max_latency_ms: Optional[float] = typer.Option(None, "--max-latency-ms", help="canary budget on p95 latency"),
    host: Optional[str] = typer.Option(None, "--host", help="user@device: copy over SSH and deploy there"),
    ssh_key: Optional[str] = typer.Option(None, "--ssh-key", help="identity file for ssh"),
    ssh_port: Optional[int] = typer.Option(None, "--ssh-port", help="ssh port"),
    ssh_config: Optional[str] = typer.Option(None, "--ssh-config", help="ssh config file (ssh -F)"),
    ssh_option: List[str] = typer.Option([], "--ssh-option", help="extra ssh -o KEY=VALUE (repeatable)"),
    remote_python: str = typer.Option("python3", "--remote-python", help="python with edgekit on the device"),
    remote_dir: Optional[str] = typer.Option(None, "--remote-dir", help="where the files are copied on the device "
                                             "before they go into the store (default ~/.cache/edgekit/profile)"),
    force: bool = typer.Option(False, "--force", help="let in a version the store marked bad (rejected by its "
                               "canary or rolled back); the override is recorded in the history"),
    json_out: bool = typer.Option(False, "--json", help="print the result as JSON"),
    require_evidence: bool = typer.Option(False, "--require-evidence", help="from now on the store takes only "
                                          "release bundles (edgekit release), for --target when given"),
) -> None:
    """Copy MODEL (a .tflite, or a release bundle folder) into the store, verified, and activate it or stage it.

    Example: edgekit deploy digits-int8.tflite --store /var/lib/app/models --canary-calls 200

    Example: edgekit deploy release/ --store /var/lib/app/models --require-evidence --target raspberry-pi-4
    """
    from ..store import ops

    budgets = dict(max_disagreement=max_disagreement, max_error_rate=max_error_rate, max_ood_rate=max_ood_rate,
                   max_latency_ms=max_latency_ms)
    if host:
        from ..release.layout import is_bundle
        from ..store.remote import deploy_remote, ssh_options

        bundle = is_bundle(model)
        if not bundle and (canary_calls is not None or canary_minutes is not None):
            budgets = ops.canary_budgets(model, manifest, target, budgets)  # the manifest is here; a bundle's there
        doc = deploy_remote(model, host, ssh_options(ssh_key, ssh_port, ssh_config, ssh_option, remote_python,
                                                              remote_dir),
                            store, manifest=manifest, signature=signature, trust=trust, canary_calls=canary_calls,
                            canary_minutes=canary_minutes, budgets=budgets, force=force,
                            target=target if bundle or require_evidence else None, require_evidence=require_evidence)
    else:
        doc = ops.deploy(model, store, manifest=manifest, signature=signature, trust=trust,
                         canary_calls=canary_calls, canary_minutes=canary_minutes, target=target, budgets=budgets,
                         force=force, require_evidence=require_evidence)
    where = f"{store} on {host}" if host else store
    was = {"activated": f" (was {str(doc['previous'])[:12]})", "staged": f" (active stays {str(doc['previous'])[:12]} "
           "until the canary passes)"}.get(doc["action"], "") if doc.get("previous") else ""
    was += f"; forced over: {doc['override']}" if doc.get("override") else ""
    typer.echo(json.dumps(doc) if json_out else f"{doc['action']} {doc['sha256'][:12]} in {where}{was}")


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
