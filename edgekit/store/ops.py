"""The store operations behind the commands, shared by ``edgekit deploy/rollback/status`` and
``python -m edgekit.store`` (what runs on a device reached over SSH).

Example:
    >>> deploy("digits-int8.tflite", "/var/lib/app/models", canary_calls=200)["action"]    # doctest: +SKIP
    'staged'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UsageError
from . import evidence
from .canary import resolve_budgets
from .store import ModelStore

BUDGET_KEYS = ("max_disagreement", "max_error_rate", "max_ood_rate", "max_latency_ms")


def deploy(model: str | Path, store: str | Path, *, manifest: str | Path | None = None,
           signature: str | Path | None = None, trust: list[str | Path] | None = None,
           canary_calls: int | None = None, canary_minutes: float | None = None, target: str | None = None,
           budgets: dict[str, Any] | None = None, reason: str = "deployed", force: bool = False,
           require_evidence: bool = False) -> dict[str, Any]:
    """Verify ``model`` (a .tflite or a release bundle folder) into ``store`` and activate it, or stage it
    for a canary; returns what happened.

    force: let in a version the store marked bad (rejected, rolled back); the override goes into the history.
    require_evidence: from now on the store takes only release bundles for ``target``.
    """
    if canary_calls is not None and canary_calls < 1:
        raise UsageError(f"--canary-calls must be at least 1, got {canary_calls}")
    if canary_minutes is not None and canary_minutes <= 0:
        raise UsageError(f"--canary-minutes must be positive, got {canary_minutes}")
    st = ModelStore(store, create=True)
    for key in trust or []:
        st.trust(key)
    if require_evidence:
        evidence.require(st, target)
    model, manifest, signature, ev = evidence.admit(st, model, manifest, signature)
    canary = None
    if canary_calls is not None or canary_minutes is not None:
        # into the store first (signature checked) so the budgets are read from a manifest that verified
        st.add(model, manifest=manifest, signature=signature, force=force)
        canary = {"calls": canary_calls, "minutes": canary_minutes,
                  "budgets": canary_budgets(model, manifest, target, budgets)}
    result = st.deploy(model, manifest=manifest, signature=signature, canary=canary, reason=reason, force=force)
    if ev is not None:
        evidence.record(st, result["sha256"], ev)
    result["store"] = str(st.root)
    return result


def canary_budgets(model: str | Path, manifest: str | Path | None, target: str | None,
                   flags: dict[str, Any] | None) -> dict[str, Any]:
    """The canary's budgets: flags, else the manifest's canary section, else the profile, else defaults."""
    from ..manifest import Manifest, manifest_path_for

    profile = None
    if target:
        from ..devices import load_profile

        profile = load_profile(target)
    man = Manifest.load(Path(manifest) if manifest else manifest_path_for(model))
    return resolve_budgets(flags, man, profile).to_dict()


def rollback(store: str | Path, reason: str = "rolled back by hand", *, expect: str | None = None) -> dict[str, Any]:
    """Go back to the previous good version; with ``expect``, only while that sha256 is active
    (else {"action": "unchanged"}: someone else moved the store on)."""
    done = ModelStore(store).rollback(reason, expect=expect)
    if done is None:
        return {"action": "unchanged", "store": str(store), "expect": expect}
    return dict(done, action="rolled-back", store=str(store))


def reject(store: str | Path, sha256: str, reason: str = "rejected by hand") -> dict[str, Any]:
    """Drop the staged candidate ``sha256`` (marked bad; the active version stays), if it is still the candidate.

    Example: ``reject("/var/lib/app/models", sha, "rollout halted on another device")["action"]`` -> 'rejected'
    """
    done = ModelStore(store).reject(sha256, reason=reason)
    return {"action": "rejected" if done else "unchanged", "sha256": sha256, "store": str(store)}


def status(store: str | Path, *, repair: bool = False, history: int = 50) -> dict[str, Any]:
    """The store's status, with its evidence requirement and the active version's evidence; with
    ``repair`` a missing or damaged index is rebuilt first (under "repair")."""
    from .health import read_health

    st = ModelStore(store)
    done = st.repair() if repair else None
    doc = dict(evidence.annotate(st, st.status(history=history)), **({"repair": done} if repair else {}))
    doc["health"] = read_health(st.root)["snapshots"]
    return doc


def health(store: str | Path, history: int = 0) -> dict[str, Any]:
    """The health snapshots the serving processes wrote into the store (edgekit.store.health)."""
    from .health import read_health

    st = ModelStore(store)
    return dict(read_health(st.root, history=history), store=str(st.root))


def fleet_report(store: str | Path, *, history: int = 200) -> dict[str, Any]:
    """What ``edgekit fleet status`` asks each device for, in one answer: status, health, incident counts."""
    from .health import read_health
    from .incident_pull import count_kinds

    st = ModelStore(store)
    doc = status(store, history=20)
    doc["health"] = read_health(st.root, history=history)
    doc["incident_counts"] = count_kinds(st.layout.incidents)
    return doc


def pull_incidents(store: str | Path, cursor: dict[str, Any] | None, since: str | None = None) -> dict[str, Any]:
    """New incident records of the store's log after ``cursor`` (edgekit.store.incident_pull)."""
    from .incident_pull import pull

    st = ModelStore(store)
    return dict(pull(st.layout.incidents, cursor, since=since), store=str(st.root))


def render_status(doc: dict[str, Any]) -> str:
    """Status as a few readable lines."""
    lines = [f"store {doc['store']} (generation {doc['generation']})"]
    fix = doc.get("repair")
    if fix:
        lines.append("repair     " + ("index.json reads fine: nothing to repair" if fix["action"] == "unchanged" else
                                      f"{fix['reason']}; damaged file kept as {fix['damaged_copy']}"))
        if fix.get("unnamed"):
            lines.append("  stored but not named (kept): " + ", ".join(s[:12] for s in fix["unnamed"]))
    a = doc.get("active")
    if a:
        ok = {True: "verified", None: "NOT CHECKED"}.get(a.get("verified"), "DOES NOT VERIFY")
        lines.append(f"active     {a['sha256'][:12]}  {ok}{', signed' if a.get('signed') else ''}  "
                     f"{a['via']} at {a['activated']}: {a['reason']}")
        for p in a.get("problems") or []:
            lines.append(f"  problem: {p}")
    else:
        lines.append("active     none")
    lines += evidence.render(doc)
    c = doc.get("candidate")
    if c:
        plan = c.get("canary") or {}
        f = c.get("figures") or {}
        lines.append(f"candidate  {c['sha256'][:12]}  staged {c['staged']}; canary {plan.get('calls')} calls / "
                     f"{plan.get('minutes')} min; compared {f.get('compared', 0)}, disagreed {f.get('disagreed', 0)}, "
                     f"errors {f.get('errors', 0)}, ood {f.get('ood', 0)}")
    if doc.get("good"):
        lines.append("good       " + ", ".join(s[:12] for s in doc["good"]))
    lines.append("history")
    for ev in doc.get("history") or []:
        lines.append(f"  {ev['time']}  {ev['event']:9} {str(ev.get('sha256'))[:12]}  {ev.get('reason', '')}"
                     + (f"  [forced over: {ev['override']}]" if ev.get("override") else ""))
    for h in doc.get("health") or []:
        lines.append(render_health_line(h))
    if doc.get("incidents"):
        lines.append("recent incidents")
        for inc in doc["incidents"][-10:]:
            lines.append(f"  {inc['time']}  {inc['kind']:9} {inc['action']}: {inc['reason'][:120]}")
    return "\n".join(lines)


def render_health_line(h: dict[str, Any]) -> str:
    """One snapshot as a line: who wrote it, when, and its main figures."""
    drift = ", ".join(f"{n} {v.get('drift')}" + (f" (psi {v['psi_max']:.2f})" if v.get("psi_max") is not None else "")
                      for n, v in (h.get("inputs") or {}).items())
    share = h.get("flagged_share")
    p95 = (h.get("latency_ms") or {}).get("p95")
    return (f"health     {h.get('file')} {h.get('age_s')} s ago: {str(h.get('sha256'))[:12]}  {h.get('calls')} calls, "
            f"OOD {share if share is None else f'{share:.1%}'}, errors {h.get('error_rate')}, "
            f"p95 {p95 if p95 is None else f'{p95:.2f} ms'}; drift: {drift or 'n/a'}")
