"""Ring deploys: a candidate goes to the fleet ring by ring, each ring a canary that must pass before the next.

For each ring, in order: the candidate is staged as a canary in every device's store (``edgekit
deploy --canary-calls``, over SSH or on this machine); each device's app (``edgekit.store.serve``)
runs it in shadow on live calls and promotes or rejects it by itself (edgekit.store.canary). The
rollout polls the stores until the candidate is promoted on every device of the ring (then the next
ring starts), or is rejected on one of them, cannot be reached, or the ring times out: then the
rollout halts. A halted ring is put back as it was: a device that rejected it already serves its
previous version; the candidate still staged elsewhere in the ring is dropped, and a device that
had promoted it rolls back; the rollout then reads each device's active version back. Rings after
it are never contacted.

Every step goes into the journal (edgekit.fleet.journal) as it happens: the same command resumes
an interrupted rollout where it stopped.

Example:
    >>> from edgekit.fleet.inventory import load_inventory
    >>> inv = load_inventory("fleet.toml")                                          # doctest: +SKIP
    >>> doc = rollout("digits-int8.tflite", inv, ["canary", "early", "all"], calls=200)   # doctest: +SKIP
    >>> doc["state"], [r["state"] for r in doc["rings"]]                              # doctest: +SKIP
    ('done', ['promoted', 'promoted', 'promoted'])
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import waiting
from ..errors import EdgekitError, UsageError
from ..fsutil import read_json, sha256_file
from ..manifest import manifest_path_for
from ..release.layout import SUMMARY, is_bundle
from ..store.canary import DEFAULT_CALLS
from .device_store import DeviceStore
from .inventory import Device, Inventory
from .journal import Journal

ALL = "all"  # the ring of every device not in an earlier ring
BROKEN = ("rejected", "failed", "timeout")
STATUS_TRIES = 3  # polls in a row a device may fail to answer before it counts as failed
DEFAULT_TIMEOUT_S = 1800.0

Emit = Callable[[str], None]


@dataclass(frozen=True)
class Candidate:
    source: Path
    sha256: str  # of the model file (inside the bundle for a bundle)
    kind: str  # model | bundle


def candidate_of(source: str | Path) -> Candidate:
    """The model (with its manifest) or release bundle to roll out, checked before any device is contacted."""
    src = Path(source)
    if is_bundle(src):
        summary = read_json(src / SUMMARY, UsageError, "release summary")
        name = (summary.get("model") or {}).get("file") if isinstance(summary, dict) else None
        if not isinstance(name, str) or not (src / name).is_file():
            raise UsageError(f"{src / SUMMARY}: names no model file of the bundle; build it again with edgekit release")
        return Candidate(src, sha256_file(src / name), "bundle")
    if src.is_dir():
        raise UsageError(f"{src}: a folder but not a release bundle (no {SUMMARY}); pass a model file or a bundle")
    if not src.is_file():
        raise UsageError(f"{src}: no such model file or release bundle")
    if not manifest_path_for(src).is_file():
        raise UsageError(f"{src}: no manifest next to it ({manifest_path_for(src).name}); convert or adopt it with "
                         "edgekit first")
    return Candidate(src, sha256_file(src), "model")


def plan_rings(inventory: Inventory, names: list[str]) -> list[tuple[str, list[Device]]]:
    """The devices of each ring, in order; ``all`` takes every device not in an earlier ring."""
    if not names:
        raise UsageError("--rings is empty; name the rings in order, e.g. --rings canary,early,all")
    plan, seen = [], set()
    for name in names:
        if name in [n for n, _ in plan]:
            raise UsageError(f"--rings names {name!r} twice")
        devices = ([d for d in inventory.devices if d.name not in seen] if name == ALL
                   else [d for d in inventory.ring(name) if d.name not in seen])
        if not devices:
            known = ", ".join(inventory.rings()) or "none"
            raise UsageError(f"ring {name!r} has no devices in {inventory.path} (rings there: {known}; "
                             f"{ALL!r} means every device not in an earlier ring)")
        seen.update(d.name for d in devices)
        plan.append((name, devices))
    return plan


@dataclass
class Settings:
    calls: int | None = None
    minutes: float | None = None
    budgets: dict[str, Any] = field(default_factory=dict)
    trust: list[Path] = field(default_factory=list)
    poll_s: float = 10.0
    timeout_s: float | None = None
    force: bool = False  # stage it where a store marked it bad (a ring halted earlier cancelled it there)

    def __post_init__(self) -> None:
        if self.calls is None and self.minutes is None:
            self.calls = DEFAULT_CALLS  # a canary needs an end; a deploy with neither would activate at once
        if self.calls is not None and self.calls < 1:
            raise UsageError(f"--calls must be at least 1, got {self.calls}")
        if self.minutes is not None and self.minutes <= 0:
            raise UsageError(f"--minutes must be positive, got {self.minutes}")
        if self.poll_s <= 0:
            raise UsageError(f"--poll must be positive, got {self.poll_s}")
        if self.timeout_s is None:
            self.timeout_s = max(DEFAULT_TIMEOUT_S, (self.minutes or 0) * 60 + 600)
        if self.timeout_s <= 0:
            raise UsageError(f"--timeout must be positive, got {self.timeout_s}")
        for key in self.trust:
            if not Path(key).is_file():
                raise UsageError(f"{key}: public key file not found")

    def journaled(self) -> dict[str, Any]:
        """What must not change between an interrupted run and its resumption."""
        return {"calls": self.calls, "minutes": self.minutes,
                "budgets": {k: v for k, v in sorted(self.budgets.items()) if v is not None}}


def default_journal(inventory: Inventory, cand: Candidate) -> Path:
    """FLEET.rollout-<sha12>.json next to the inventory: the same command finds it again."""
    return inventory.path.with_name(f"{inventory.path.stem}.rollout-{cand.sha256[:12]}.json")


def rollout(source: str | Path, inventory: Inventory, rings: list[str], *, settings: Settings | None = None,
            journal: str | Path | None = None, emit: Emit | None = None) -> dict[str, Any]:
    """Roll ``source`` out ring by ring (see the module docstring); returns the report (``state`` done or halted)."""
    settings = settings or Settings()
    emit = emit or (lambda line: None)
    cand = candidate_of(source)
    plan = plan_rings(inventory, rings)
    path = Path(journal) if journal else default_journal(inventory, cand)
    j = Journal.open(path, cand.sha256, str(cand.source), str(inventory.path),
                     [(name, [d.name for d in devs]) for name, devs in plan], settings.journaled())
    started = time.monotonic()
    emit(f"rollout of {cand.sha256[:12]} ({cand.source}) to {_n(len(plan), 'ring')}, journal {path}")
    planned = {d.name for _, devs in plan for d in devs}
    left = [d.name for d in inventory.devices if d.name not in planned]
    if left:
        emit(f"not in these rings, left alone: {', '.join(left)}")
    try:
        _rings(plan, cand, j, settings, emit)
    except KeyboardInterrupt:
        emit(f"interrupted: {path} keeps every finished step; run the same command again to resume")
        raise
    return report(j, plan, time.monotonic() - started)


def _rings(plan: list[tuple[str, list[Device]]], cand: Candidate, j: Journal, settings: Settings,
           emit: Emit) -> None:
    """Each ring in order; rings the journal says are promoted are skipped; a halted ring ends the rollout."""
    for index, (name, devices) in enumerate(plan):
        ring = j.ring(name)
        if ring["state"] == "promoted":
            emit(f"ring {name}: promoted earlier on {_n(len(devices), 'device')} (from the journal)")
            continue
        if ring["state"] == "halted" or j.state == "halted":
            emit(f"ring {name}: halted earlier: {ring.get('reason') or j.doc.get('reason')}")
        else:
            _Ring(name, devices, cand, j, settings, emit).run()
        if j.ring(name)["state"] == "halted" or j.state == "halted":
            later = [n for n, _ in plan[index + 1:]]
            if j.state != "halted":
                j.finish("halted", f"ring {name}: {j.ring(name)['reason']}")
            emit(f"rollout halted at ring {name}; " + (f"rings not reached: {', '.join(later)}" if later
                                                         else "it was the last ring"))
            break
    else:
        if j.state != "done":
            j.finish("done")
        emit(f"rollout done: {cand.sha256[:12]} promoted on every ring")


class _Ring:
    """One ring's deploy, watch and (when broken) putting back."""

    def __init__(self, name: str, devices: list[Device], cand: Candidate, j: Journal, settings: Settings,
                 emit: Emit):
        self.name, self.devices, self.cand, self.j, self.s, self.emit = name, devices, cand, j, settings, emit
        self.stores = {d.name: DeviceStore(d) for d in devices}
        self.misses = {d.name: 0 for d in devices}
        self.shown: dict[str, Any] = {}

    def run(self) -> None:
        t0 = time.monotonic()
        before = self.j.ring(self.name).get("seconds") or 0.0
        self.j.set_ring(self.name, state="running", started=self.j.ring(self.name).get("started") or _now())
        self.emit(f"ring {self.name} ({_n(len(self.devices), 'device')}: {', '.join(d.name for d in self.devices)})")
        self._each([d for d in self.devices if self.j.device(d.name)["step"] is None], self._stage)
        self._watch()
        broken = [d.name for d in self.devices if self.j.device(d.name)["step"] in BROKEN]
        if broken:
            first = self.j.device(broken[0])
            reason = f"{broken[0]} {first['step']}: {first.get('reason')}"
            self._each(self.devices, lambda d: self._put_back(d, reason))
        seconds = round(before + time.monotonic() - t0, 2)
        state = "halted" if broken else "promoted"
        self.j.set_ring(self.name, state=state, finished=_now(), seconds=seconds,
                        reason=reason if broken else None)
        self.emit(f"ring {self.name}: {state} in {seconds:.1f} s" + (f": {reason}" if broken else
                                                                      f" on {_n(len(self.devices), 'device')}"))

    def _each(self, devices: list[Device], fn: Callable[[Device], None]) -> None:
        """fn on every device in parallel (one ssh each), waiting in slices so Ctrl-C stops it."""
        if not devices:
            return
        pool = ThreadPoolExecutor(max_workers=min(16, len(devices)))
        try:
            for fut in [pool.submit(fn, d) for d in devices]:
                waiting.result(fut)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    # ---- steps ---------------------------------------------------------------------------------
    def _stage(self, d: Device) -> None:
        """Read the device's active version, then stage the candidate unless the store already has it."""
        st = self.stores[d.name]
        try:
            status = st.status()
            previous = ((status or {}).get("active") or {}).get("sha256")
            self.j.set_device(d.name, previous=previous)
            seen = _look(status, self.cand.sha256) if status else None
            if seen is not None and seen["step"] not in ("absent", "rejected" if self.s.force else ""):
                self._record(d, seen, "found in the store")  # an interrupted run got this far already
                return
            res = st.deploy(self.cand.source, calls=self.s.calls, minutes=self.s.minutes,
                            budgets=self.s.budgets, trust=self.s.trust, force=self.s.force)
        except EdgekitError as err:
            self.j.set_device(d.name, step="failed", reason=str(err))
            self.emit(f"  {d.name}: failed: {err}")
            return
        if res["action"] == "staged":
            self.j.set_device(d.name, step="staged", reason="canary started")
            self.emit(f"  {d.name}: staged (serves {str(previous)[:12]} until the canary passes)")
        else:  # the store's first version (no canary possible) or the candidate already active
            self.j.set_device(d.name, step="promoted", reason=f"{res['action']} (no canary: "
                              f"{'first version of the store' if previous is None else 'already active'})")
            self.emit(f"  {d.name}: {res['action']} (no earlier version to compare with)")

    def _watch(self) -> None:
        deadline = time.monotonic() + self.s.timeout_s
        while True:
            steps = {d.name: self.j.device(d.name)["step"] for d in self.devices}
            waiting_on = [d for d in self.devices if steps[d.name] == "staged"]
            if not waiting_on or any(s in BROKEN for s in steps.values()):
                return
            if time.monotonic() >= deadline:
                for d in waiting_on:
                    self.j.set_device(d.name, step="timeout", reason=f"no decision within {self.s.timeout_s:g} s "
                                      "(is the app serving the store and getting calls?)")
                return
            self._each(waiting_on, self._poll)
            if any(self.j.device(d.name)["step"] == "staged" for d in self.devices):
                _sleep(min(self.s.poll_s, max(0.0, deadline - time.monotonic())))

    def _poll(self, d: Device) -> None:
        try:
            status = self.stores[d.name].status()
        except EdgekitError as err:
            self.misses[d.name] += 1
            if self.misses[d.name] >= STATUS_TRIES:
                self.j.set_device(d.name, step="failed", reason=f"no answer {STATUS_TRIES} times in a row: {err}")
            return
        self.misses[d.name] = 0
        seen = _look(status, self.cand.sha256) if status else {"step": "failed", "reason": "the store is gone"}
        if seen["step"] == "staged":
            f = seen.get("figures") or {}
            key = (f.get("compared"), f.get("disagreed"))
            if f and self.shown.get(d.name) != key:
                self.shown[d.name] = key
                self.emit(f"  {d.name}: canary compared {f.get('compared', 0)}/{self.s.calls or '-'} calls, "
                          f"disagreed {f.get('disagreed', 0)}, errors {f.get('errors', 0)}")
            return
        self._record(d, seen, "decided on the device")

    def _record(self, d: Device, seen: dict[str, Any], how: str) -> None:
        step = "failed" if seen["step"] == "absent" else seen["step"]
        reason = seen.get("reason") or "its canary is running"
        self.j.set_device(d.name, step=step, reason=reason, figures=_brief(seen.get("figures")))
        self.emit(f"  {d.name}: {step} ({how}): {reason}")

    def _put_back(self, d: Device, why: str) -> None:
        """After a broken ring: the candidate off this device (dropped or rolled back), the active version read back."""
        rec, st, sha = self.j.device(d.name), self.stores[d.name], self.cand.sha256
        halt = f"fleet rollout halted: {why}"
        try:
            if rec["step"] == "promoted" and rec.get("previous"):
                st.rollback(sha, halt)
                self.j.set_device(d.name, step="rolled-back", reason=halt)
            elif rec["step"] in ("staged", "timeout", "failed"):
                done = st.reject(sha, halt)
                if done.get("action") == "rejected" and rec["step"] == "staged":
                    self.j.set_device(d.name, step="cancelled", reason=halt)
            status = st.status()
        except EdgekitError as err:
            self.j.set_device(d.name, active_after=None, put_back_error=str(err))
            self.emit(f"  {d.name}: could not be put back: {err}")
            return
        active = ((status or {}).get("active") or {}).get("sha256")
        self.j.set_device(d.name, active_after=active)
        ok = active == rec.get("previous") and active != sha
        self.emit(f"  {d.name}: serves {str(active)[:12]}" + (" (its previous version)" if ok else
                                                                f" (NOT its previous {str(rec.get('previous'))[:12]})"))


def _look(status: dict[str, Any], sha: str) -> dict[str, Any]:
    """Where the candidate stands in one store's status: staged, promoted, rejected, or absent."""
    active = (status.get("active") or {}).get("sha256")
    cand = status.get("candidate") or {}
    history = status.get("history") or []
    if active == sha:
        ev = _last(history, lambda e: e.get("sha256") == sha and e.get("event") in ("promote", "activate"))
        return {"step": "promoted", "reason": (ev or {}).get("reason", "active"), "figures": (ev or {}).get("figures")}
    if cand.get("sha256") == sha:
        return {"step": "staged", "figures": cand.get("figures")}
    ev = _last(history, lambda e: (e.get("event") == "reject" and e.get("sha256") == sha)
               or (e.get("event") == "rollback" and e.get("previous") == sha))
    if ev is not None:
        return {"step": "rejected", "reason": ev.get("reason"), "figures": ev.get("figures")}
    if sha in (status.get("bad") or []):
        return {"step": "rejected", "reason": "the store marks it bad"}
    return {"step": "absent", "reason": f"the candidate is neither staged nor active there (active {str(active)[:12]})"}


def _last(history: list[dict[str, Any]], match: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    return next((e for e in reversed(history) if match(e)), None)


def _brief(figures: dict[str, Any] | None) -> dict[str, Any] | None:
    keys = ("compared", "disagreed", "errors", "ood", "disagreement", "error_rate", "ood_rate", "latency_p95_ms")
    return {k: figures.get(k) for k in keys if k in figures} if isinstance(figures, dict) else None


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _now() -> str:
    from .journal import now

    return now()


def _sleep(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:  # in slices: Ctrl-C is seen at once
        time.sleep(min(waiting.SLICE_S, max(0.0, end - time.monotonic())))


def report(j: Journal, plan: list[tuple[str, list[Device]]], seconds: float) -> dict[str, Any]:
    """The rollout as one document (the journal's facts, by ring)."""
    rings = []
    for name, devices in plan:
        r = j.ring(name)
        rings.append({"name": name, "state": r["state"], "seconds": r.get("seconds"), "reason": r.get("reason"),
                      "devices": [dict(j.device(d.name), name=d.name, host=d.target) for d in devices]})
    return {"candidate": j.doc["candidate"], "state": j.state, "reason": j.doc.get("reason"), "journal": str(j.path),
            "seconds": round(seconds, 2), "rings": rings,
            "untouched": [d["name"] for r in rings if r["state"] == "pending" for d in r["devices"]]}


def render(doc: dict[str, Any]) -> str:
    """The report as a few lines: one per ring, one per device."""
    lines = [f"rollout of {doc['candidate']['sha256'][:12]}: {doc['state']}"
             + (f" ({doc['reason']})" if doc.get("reason") else "") + f" in {doc['seconds']:.1f} s"]
    for r in doc["rings"]:
        took = f" in {r['seconds']:.1f} s" if r.get("seconds") is not None else ""
        lines.append(f"ring {r['name']:10} {r['state']}{took}")
        for d in r["devices"]:
            f = d.get("figures") or {}
            figs = f"  compared {f.get('compared')}, disagreed {f.get('disagreed')}" if f else ""
            after = f"  serves {str(d.get('active_after'))[:12]}" if "active_after" in d else ""
            lines.append(f"  {d['name']:14} {d.get('step') or 'not reached'}{figs}{after}")
    if doc["untouched"]:
        lines.append("not contacted: " + ", ".join(doc["untouched"]))
    lines.append(f"journal {doc['journal']}")
    return "\n".join(lines)
