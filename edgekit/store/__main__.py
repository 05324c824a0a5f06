"""``python -m edgekit.store``: the store commands on the device itself (what ``edgekit deploy --host`` runs).

Light on purpose (argparse, no typer): it is what a device runs. Prints JSON with --json.

Example:
    $ python3 -m edgekit.store deploy model.tflite --store /var/lib/app/models --canary-calls 200 --json
    $ python3 -m edgekit.store reject SHA256 --store /var/lib/app/models --reason "rollout halted" --json
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import EdgekitError, UsageError
from . import ops


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m edgekit.store")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("deploy")
    d.add_argument("model")
    d.add_argument("--store", required=True)
    d.add_argument("--manifest")
    d.add_argument("--signature")
    d.add_argument("--trust", action="append", default=[])
    d.add_argument("--canary-calls", type=int)
    d.add_argument("--canary-minutes", type=float)
    d.add_argument("--target")
    d.add_argument("--force", action="store_true")
    d.add_argument("--require-evidence", action="store_true", help="from now on only release bundles get in")
    for key in ops.BUDGET_KEYS:
        d.add_argument(f"--{key.replace('_', '-')}", type=float, dest=key)
    for name in ("rollback", "status", "reject"):
        s = sub.add_parser(name)
        s.add_argument("--store", required=True)
    for name in ("rollback", "reject"):
        sub.choices[name].add_argument("--reason")
    sub.choices["rollback"].add_argument("--expect", help="only if this sha256 is still active")
    sub.choices["reject"].add_argument("sha256", help="the candidate to drop (only if it is still the candidate)")
    sub.choices["status"].add_argument("--repair", action="store_true")
    h = sub.add_parser("health", help="the health snapshots served models wrote into the store")
    h.add_argument("dir", nargs="?", help="the store folder (or --store)")
    h.add_argument("--store")
    h.add_argument("--history", type=int, default=0, help="also the last N history lines")
    f = sub.add_parser("fleet", help="status, health and incident counts in one JSON answer")
    f.add_argument("--store", required=True)
    f.add_argument("--history", type=int, default=200)
    i = sub.add_parser("incidents", help="new incident records after a cursor (JSON)")
    i.add_argument("--store", required=True)
    i.add_argument("--cursor", help="the cursor JSON the previous pull returned")
    i.add_argument("--since", help="skip records older than this ISO time")
    for s in sub.choices.values():
        s.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "deploy":
            doc = ops.deploy(a.model, a.store, manifest=a.manifest, signature=a.signature, trust=a.trust,
                             canary_calls=a.canary_calls, canary_minutes=a.canary_minutes, target=a.target,
                             budgets={k: getattr(a, k) for k in ops.BUDGET_KEYS}, force=a.force,
                             require_evidence=a.require_evidence)
        elif a.cmd == "rollback":
            doc = ops.rollback(a.store, a.reason or "rolled back by hand", expect=a.expect)
        elif a.cmd == "reject":
            doc = ops.reject(a.store, a.sha256, a.reason or "rejected by hand")
        elif a.cmd == "health":
            doc = ops.health(_store_arg(a), history=a.history)
        elif a.cmd == "fleet":
            doc = ops.fleet_report(a.store, history=a.history)
        elif a.cmd == "incidents":
            doc = ops.pull_incidents(a.store, _cursor(a.cursor), since=a.since)
        else:
            doc = ops.status(a.store, repair=a.repair)
    except EdgekitError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    if a.cmd == "health" and not a.json:
        print("\n".join([ops.render_health_line(h) for h in doc["snapshots"]] or ["no health snapshot yet"]))
    else:
        print(ops.render_status(doc) if a.cmd == "status" and not a.json else json.dumps(doc, default=str))
    return 0


def _store_arg(a: argparse.Namespace) -> str:
    if not (a.dir or a.store):
        raise UsageError("health: give the store folder (python -m edgekit.store health DIR)")
    return a.store or a.dir


def _cursor(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        cur = json.loads(text)
    except ValueError:
        raise UsageError(f"--cursor: not JSON: {text[:80]!r}") from None
    if not isinstance(cur, dict):
        raise UsageError(f"--cursor: must be a JSON object, got {text[:80]!r}")
    return cur


if __name__ == "__main__":
    sys.exit(main())
