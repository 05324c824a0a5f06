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

from ..errors import EdgekitError
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
    for s in sub.choices.values():
        s.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "deploy":
            doc = ops.deploy(a.model, a.store, manifest=a.manifest, signature=a.signature, trust=a.trust,
                             canary_calls=a.canary_calls, canary_minutes=a.canary_minutes, target=a.target,
                             budgets={k: getattr(a, k) for k in ops.BUDGET_KEYS}, force=a.force)
        elif a.cmd == "rollback":
            doc = ops.rollback(a.store, a.reason or "rolled back by hand", expect=a.expect)
        elif a.cmd == "reject":
            doc = ops.reject(a.store, a.sha256, a.reason or "rejected by hand")
        else:
            doc = ops.status(a.store, repair=a.repair)
    except EdgekitError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    print(ops.render_status(doc) if a.cmd == "status" and not a.json else json.dumps(doc, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
