"""``edgekit fleet status``: every device's store, health snapshot and incidents, judged alone and against the fleet.

Each device answers ``python -m edgekit.store fleet`` (one ssh call: status, health snapshots with
their history, incident counts). A device is **unhealthy** by absolute limits (no active version,
one that does not verify, a security event, the primary model not loaded, an input drifted, OOD
share or error rate over a limit) and **unreachable** when it did not answer; both make the exit
code 1. **Outliers** are scored against the rest of the fleet (edgekit.fleet.outliers) and shown as
warnings with their z-scores, as are stale snapshots, automatic rollbacks and dropped incidents.

Example:
    >>> doc = fleet_status(load_inventory("fleet.toml"), timeout_s=20)          # doctest: +SKIP
    >>> [(d["name"], d["state"]) for d in doc["devices"]]                       # doctest: +SKIP
    [('pi-1', 'healthy'), ('pi-2', 'unhealthy'), ('pi-3', 'unreachable')]
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from . import outliers
from .gather import Answer, ask_all, local_store
from .inventory import Device, Inventory

SCHEMA = "edgekit.fleet-status/1"


@dataclass(frozen=True)
class Limits:
    """Absolute limits: over one, a device is unhealthy whatever the rest of the fleet does."""

    max_psi: float = 0.25  # PSI above 0.25 reads "drifted" (edgekit.runtime.monitor.drift_level)
    max_ood_share: float = 0.25  # share of the recent window flagged out of distribution
    max_error_rate: float = 0.05  # invoke + output + load incidents per call
    stale_s: float = 3600.0  # a snapshot older than this is a warning (the app stopped, or serves nothing)


def _local_report(history: int) -> Callable[[Device], dict[str, Any]]:
    def run(dev: Device) -> dict[str, Any]:
        from ..store import ops

        return ops.fleet_report(local_store(dev), history=history)

    return run


def gather(inv: Inventory, *, timeout_s: float, history: int = 200,
           on_done: Callable[[Answer], None] | None = None) -> list[Answer]:
    return ask_all(inv, lambda d: ["fleet", "--store", d.store, "--history", str(history)], timeout_s=timeout_s,
                   local=_local_report(history), on_done=on_done)


def fleet_status(inv: Inventory, *, timeout_s: float = 30.0, limits: Limits = Limits(), history: int = 200,
                 on_done: Callable[[Answer], None] | None = None) -> dict[str, Any]:
    """Gather and judge; the document ``--json`` prints (devices, rings, tags, versions, outliers)."""
    t0 = time.monotonic()
    answers = gather(inv, timeout_s=timeout_s, history=history, on_done=on_done)
    return judge(inv, answers, limits, elapsed_s=round(time.monotonic() - t0, 3))


def judge(inv: Inventory, answers: list[Answer], limits: Limits = Limits(), elapsed_s: float = 0.0) -> dict[str, Any]:
    rows = [_row(a, limits) for a in answers]
    _score(rows)
    for r in rows:
        if r["state"] == "healthy" and (r["warnings"]):
            r["state"] = "warning"
    doc = {"schema": SCHEMA, "inventory": str(inv.path), "elapsed_s": elapsed_s, "limits": asdict(limits),
           "devices": rows, "rings": _groups(rows, lambda r: [r["ring"]] if r["ring"] else []),
           "tags": _groups(rows, lambda r: r["tags"]), "versions": _versions(rows),
           "unhealthy": [r["name"] for r in rows if r["state"] == "unhealthy"],
           "unreachable": [r["name"] for r in rows if r["state"] == "unreachable"]}
    doc["ok"] = not doc["unhealthy"] and not doc["unreachable"]
    return doc


def _row(ans: Answer, limits: Limits) -> dict[str, Any]:
    d = ans.device
    row: dict[str, Any] = {"name": d.name, "host": d.target, "ring": d.ring, "tags": list(d.tags), "store": d.store,
                           "elapsed_s": ans.elapsed_s, "state": "healthy", "problems": [], "warnings": [],
                           "outliers": {}}
    if not ans.ok:
        row.update(state="unreachable", error=ans.error, problems=[ans.error])
        return row
    doc = ans.doc or {}
    active = doc.get("active") or {}
    cand = doc.get("candidate")
    row["active"] = {k: active.get(k) for k in ("sha256", "via", "activated", "verified", "signed")} if active else None
    row["candidate"] = ({"sha256": cand["sha256"], "canary": cand.get("canary"), "figures": cand.get("figures")}
                        if cand else None)
    events = doc.get("history") or []
    rollbacks = [e for e in events if e.get("event") == "rollback"]
    row["rollbacks"] = {"recent": len(rollbacks), "automatic": sum(1 for e in rollbacks if _automatic(e)),
                        "last": rollbacks[-1] if rollbacks else None}
    counts = doc.get("incident_counts") or {}
    row["incidents"] = counts
    health = doc.get("health") or {}
    snap = health.get("latest")
    row["history"] = health.get("history") or []
    problems, warnings = row["problems"], row["warnings"]
    if not active:
        problems.append("no active version in the store")
    elif active.get("verified") is False:
        problems.append("the active version does not verify: " + "; ".join(active.get("problems") or []))
    if row["rollbacks"]["automatic"]:
        last = row["rollbacks"]["last"]
        warnings.append(f"{row['rollbacks']['automatic']} automatic rollback(s); last: {last.get('reason', '')[:100]}")
    if counts.get("dropped"):
        warnings.append(f"the device dropped {counts['dropped']} incident record(s) (log rotation or a full disk)")
    row["health"] = _health(snap)
    if snap is None:
        warnings.append("no health snapshot (is the app serving this store with edgekit.store.serve?)")
    else:
        h = row["health"]
        if snap.get("age_s", 0) > limits.stale_s:
            warnings.append(f"last health snapshot {snap['age_s']:.0f} s old")
        if active and snap.get("sha256") != active.get("sha256"):
            warnings.append(f"the snapshot is of {str(snap.get('sha256'))[:12]}, not the active version")
        if snap.get("security_ok") is False:
            problems.append("security event at load (tampered or unsigned model)")
        if snap.get("fallback_active"):
            problems.append("the primary model did not load: the fallback answers every call")
        for name, v in (snap.get("inputs") or {}).items():
            psi = v.get("psi_max")
            if isinstance(psi, (int, float)) and psi > limits.max_psi:
                problems.append(f"input {name} drifted (PSI {psi:.2f} > {limits.max_psi:g})")
        if h["ood_share"] is not None and h["ood_share"] > limits.max_ood_share:
            problems.append(f"OOD share {h['ood_share']:.0%} > {limits.max_ood_share:.0%}")
        if h["error_rate"] is not None and h["error_rate"] > limits.max_error_rate:
            problems.append(f"error rate {h['error_rate']:.1%} > {limits.max_error_rate:.0%}")
    if problems:
        row["state"] = "unhealthy"
    return row


def _automatic(event: dict[str, Any]) -> bool:
    """A rollback the served model did by itself (edgekit.store.served: health rules, a version that does not
    verify), not one by hand: the store records it with its reason."""
    reason = str(event.get("reason", ""))
    return reason.startswith(("automatic", "active version does not verify"))


def _health(snap: dict[str, Any] | None) -> dict[str, Any]:
    if snap is None:
        return {"ood_share": None, "psi_max": None, "error_rate": None, "fallback_rate": None,
                "incident_rate": None, "latency_p95_ms": None, "calls": None, "age_s": None, "drift": {},
                "top1_share": None}
    psi = [v["psi_max"] for v in (snap.get("inputs") or {}).values() if isinstance(v.get("psi_max"), (int, float))]
    outs = snap.get("outputs") or {}
    first = next(iter(outs.values()), {}) if outs else {}
    return {"sha256": snap.get("sha256"), "calls": snap.get("calls"), "age_s": snap.get("age_s"),
            "ood_share": snap.get("flagged_share"), "psi_max": max(psi) if psi else None,
            "error_rate": snap.get("error_rate"),
            "fallback_rate": round(sum((snap.get("fallback_rates") or {}).values()), 6),
            "incident_rate": round(sum((snap.get("incident_rates") or {}).values()), 6),
            "incident_rates": snap.get("incident_rates") or {},
            "latency_p95_ms": (snap.get("latency_ms") or {}).get("p95"),
            "latency_p50_ms": (snap.get("latency_ms") or {}).get("p50"),
            "drift": {n: v.get("drift") for n, v in (snap.get("inputs") or {}).items()},
            "top1_share": first.get("top1_share"), "canary": snap.get("canary"), "shadow": snap.get("shadow"),
            "via": snap.get("via")}


METRICS = ("ood_share", "psi_max", "error_rate", "fallback_rate", "incident_rate", "latency_p95_ms")


def _score(rows: list[dict[str, Any]]) -> None:
    """Outliers against the rest of the fleet, among the devices with a snapshot."""
    live = [r for r in rows if r["state"] != "unreachable" and r["health"].get("calls")]
    metrics = {r["name"]: {m: r["health"].get(m) for m in METRICS} for r in live}
    dists = [r["health"]["top1_share"] for r in live if r["health"].get("top1_share")]
    if len(dists) >= outliers.MIN_DEVICES:
        med = outliers.median_distribution(dists)
        for r in live:
            if r["health"].get("top1_share"):
                shift = outliers.total_variation(r["health"]["top1_share"], med)
                r["health"]["output_shift"] = shift
                metrics[r["name"]]["output_shift"] = shift
    scored = outliers.flag(metrics)
    for r in live:
        flagged = scored.get(r["name"], {})
        r["outliers"] = flagged
        if flagged:
            r["warnings"].append("outlier against the fleet: " + ", ".join(f"{m} z={z:.1f}"
                                                                        for m, z in sorted(flagged.items())))


def _groups(rows: list[dict[str, Any]], keys_of: Callable[[dict[str, Any]], list[str]]) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        for k in keys_of(r):
            groups.setdefault(k, []).append(r)
    out = {}
    for k, members in groups.items():
        live = [r for r in members if r["state"] != "unreachable"]

        def med(m: str) -> float | None:
            vals = [r["health"][m] for r in live if r["health"].get(m) is not None]
            return round(statistics.median(vals), 6) if vals else None

        out[k] = {"devices": len(members), "reachable": len(live),
                  "healthy": sum(1 for r in members if r["state"] in ("healthy", "warning")),
                  "unhealthy": [r["name"] for r in members if r["state"] == "unhealthy"],
                  "unreachable": [r["name"] for r in members if r["state"] == "unreachable"],
                  "versions": _versions(members), "median_ood_share": med("ood_share"),
                  "max_psi": max((r["health"]["psi_max"] for r in live if r["health"].get("psi_max") is not None),
                                 default=None),
                  "median_error_rate": med("error_rate"), "median_incident_rate": med("incident_rate"),
                  "incidents": sum((r.get("incidents") or {}).get("records", 0) for r in live),
                  "rollbacks": sum((r.get("rollbacks") or {}).get("automatic", 0) for r in live)}
    return out


def _versions(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in rows:
        if r.get("active"):
            out.setdefault(r["active"]["sha256"][:12], []).append(r["name"])
    return out


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.1%}"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def render(doc: dict[str, Any]) -> str:
    """A table per device, then rings and tags, then the problems by name."""
    head = f"{'device':16} {'ring':8} {'state':11} {'version':12} {'calls':>7} {'OOD':>6} {'PSI':>5} " \
           f"{'errors':>6} {'fallbk':>6} {'p95 ms':>7} {'incid.':>6} {'rollb':>5}"
    lines = [f"fleet {doc['inventory']}: {len(doc['devices'])} devices in {doc['elapsed_s']:.2f} s", head]
    for r in doc["devices"]:
        h = r.get("health") or {}
        if r["state"] == "unreachable":
            lines.append(f"{r['name'][:16]:16} {str(r['ring'] or '-')[:8]:8} {'UNREACHABLE':11} {r['error']}")
            continue
        state = r["state"].upper() if r["state"] == "unhealthy" else r["state"]
        version = ((r.get("active") or {}).get("sha256") or "-")[:12]
        calls = "-" if h.get("calls") is None else h["calls"]
        lines.append(
            f"{r['name'][:16]:16} {str(r['ring'] or '-')[:8]:8} {state:11} {version:12} {calls:>7} "
            f"{_pct(h.get('ood_share')):>6} {_num(h.get('psi_max')):>5} {_pct(h.get('error_rate')):>6} "
            f"{_pct(h.get('fallback_rate')):>6} {_num(h.get('latency_p95_ms')):>7} "
            f"{(r.get('incidents') or {}).get('records', 0):>6} {(r.get('rollbacks') or {}).get('automatic', 0):>5}")
        cand = r.get("candidate")
        if cand:
            f = cand.get("figures") or {}
            lines.append(f"{'':16}   canary {cand['sha256'][:12]}: compared {f.get('compared', 0)}, "
                         f"disagreed {f.get('disagreed', 0)}, errors {f.get('errors', 0)}, ood {f.get('ood', 0)}")
    for title, groups in (("ring", doc["rings"]), ("tag", doc["tags"])):
        for name, g in groups.items():
            vers = ", ".join(f"{v} x{len(ds)}" for v, ds in g["versions"].items()) or "-"
            lines.append(f"{title} {name}: {g['healthy']}/{g['devices']} healthy, versions {vers}, median OOD "
                         f"{_pct(g['median_ood_share'])}, max PSI {_num(g['max_psi'])}, median incidents per call "
                         f"{_pct(g['median_incident_rate'])}, {g['incidents']} incidents logged, "
                         f"{g['rollbacks']} automatic rollbacks")
    for r in doc["devices"]:
        for p in r["problems"]:
            lines.append(f"{r['state']}: {r['name']}: {p}")
        for w in r["warnings"]:
            lines.append(f"warning: {r['name']}: {w}")
    lines.append("fleet ok" if doc["ok"] else
                 f"fleet NOT ok: {len(doc['unhealthy'])} unhealthy ({', '.join(doc['unhealthy']) or '-'}), "
                 f"{len(doc['unreachable'])} unreachable ({', '.join(doc['unreachable']) or '-'})")
    return "\n".join(lines)
