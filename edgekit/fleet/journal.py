"""The rollout journal: what a ring deploy has done, device by device, rewritten atomically after each step.

An interrupted rollout (Ctrl-C, kill -9, a lost laptop lid) is resumed by running the same command:
the journal says which rings are done and which devices already hold the candidate, and those
steps are not redone. One journal belongs to one candidate, one inventory and one list of rings;
a command that does not match it is refused (start another journal instead).

::

    {"schema": "edgekit.fleet-rollout/1", "candidate": {"sha256", "source"}, "inventory", "rings": [...],
     "settings": {"calls", "minutes", "budgets"}, "state": "running" | "done" | "halted", "reason",
     "ring": {NAME: {"devices": [...], "state": "pending" | "running" | "promoted" | "halted",
                     "started", "finished", "seconds", "reason"}},
     "device": {NAME: {"ring", "previous", "step", "reason", "figures", "active_after", "time"}}}

Device steps: staged -> promoted | rejected | failed | timeout | cancelled | rolled-back.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rollout.json"
    >>> j = Journal.open(path, "ab" * 32, "m.tflite", "fleet.toml", [("canary", ["pi-1"])], {"calls": 100})
    >>> j.set_device("pi-1", step="staged", previous="cd" * 32)
    >>> again = Journal.open(path, "ab" * 32, "m.tflite", "fleet.toml", [("canary", ["pi-1"])], {"calls": 100})
    >>> again.device("pi-1")["step"]
    'staged'
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fsutil import atomic_write_text, read_json

SCHEMA = "edgekit.fleet-rollout/1"
FINAL_STEPS = ("promoted", "rejected", "failed", "timeout", "cancelled", "rolled-back")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Journal:
    """One rollout's journal file; every change is written at once (temp + fsync + rename)."""

    def __init__(self, path: Path, doc: dict[str, Any]):
        self.path, self.doc = path, doc
        self._lock = threading.Lock()  # devices of a ring report from worker threads

    @classmethod
    def open(cls, path: str | Path, sha256: str, source: str, inventory: str, plan: list[tuple[str, list[str]]],
             settings: dict[str, Any]) -> "Journal":
        """Resume the journal at ``path`` (checked against this command) or start a new one."""
        path = Path(path)
        if path.is_file():
            doc = read_json(path, UsageError, "rollout journal")
            j = cls(path, doc)
            j._check(sha256, plan, settings)
            return j
        doc = {"schema": SCHEMA, "candidate": {"sha256": sha256, "source": source}, "inventory": inventory,
               "rings": [name for name, _ in plan], "settings": settings, "state": "running", "reason": None,
               "started": now(), "updated": now(),
               "ring": {name: {"devices": devices, "state": "pending"} for name, devices in plan},
               "device": {d: {"ring": name, "step": None} for name, devices in plan for d in devices}}
        j = cls(path, doc)
        j.save()
        return j

    def _check(self, sha256: str, plan: list[tuple[str, list[str]]], settings: dict[str, Any]) -> None:
        doc, where = self.doc, self.path
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise UsageError(f"{where}: not a rollout journal ({SCHEMA}); pass another --journal")
        had = (doc.get("candidate") or {}).get("sha256", "")
        if had != sha256:
            raise UsageError(f"{where}: the journal of the rollout of {str(had)[:12]}, not of {sha256[:12]}; "
                             "pass another --journal for this candidate")
        if doc.get("rings") != [name for name, _ in plan]:
            raise UsageError(f"{where}: that rollout ran rings {','.join(doc.get('rings') or [])}; resume it with "
                             "the same --rings, or pass another --journal")
        for name, devices in plan:
            was = (doc.get("ring") or {}).get(name, {}).get("devices")
            if was != devices:
                raise UsageError(f"{where}: ring {name} was {', '.join(was or [])} when the rollout started and is "
                                 f"{', '.join(devices)} in the inventory now; restore the inventory or pass another "
                                 "--journal")
        devices = doc.get("device")
        if not isinstance(devices, dict) or not all(isinstance(devices.get(d), dict) for _, ds in plan for d in ds):
            raise UsageError(f"{where}: the journal has no record of some devices (changed by hand?); "
                             "pass another --journal")
        if doc.get("settings") != settings:
            raise UsageError(f"{where}: that rollout ran with {json.dumps(doc.get('settings'))}; resume it with the "
                             "same --calls, --minutes and budgets, or pass another --journal")

    def save(self) -> None:
        self.doc["updated"] = now()
        try:
            atomic_write_text(self.path, json.dumps(self.doc, indent=1, default=str) + "\n")
        except OSError as err:  # the rollout must not go on unrecorded: it could not be resumed
            raise UsageError(f"{self.path}: cannot write the rollout journal ({err.strerror}); "
                             "pass --journal FILE in a writable folder") from None

    @property
    def state(self) -> str:
        return self.doc["state"]

    def ring(self, name: str) -> dict[str, Any]:
        return self.doc["ring"][name]

    def device(self, name: str) -> dict[str, Any]:
        return self.doc["device"][name]

    def set_ring(self, name: str, **fields: Any) -> None:
        with self._lock:
            self.doc["ring"][name].update(fields)
            self.save()

    def set_device(self, name: str, **fields: Any) -> None:
        with self._lock:
            self.doc["device"][name].update(fields, time=now())
            self.save()

    def finish(self, state: str, reason: str | None = None) -> None:
        with self._lock:
            self.doc.update(state=state, reason=reason, finished=now())
            self.save()
