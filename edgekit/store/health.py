"""Health that outlives the process: a served model's snapshot written into its store, readable without the app.

::

    STORE/health/<host>-<pid>.json   the latest snapshot of one serving process (replaced atomically)
    STORE/health/history.jsonl       one short line per snapshot, for plots (rotated: about 2 x 256 KB at most)

``ServedModel`` writes at most once per ``health_every_s`` seconds (default 10), from a background
thread, and once more on close; the call path only compares a clock reading with a deadline. A
snapshot says which version served, how many calls, incidents and fallbacks per kind (counts and
rates per call), OOD share and score, drift (PSI) per input, top-1 shares per output, the shadow and
canary comparison, latency p50/p95. ``python -m edgekit.store health STORE`` and ``status --json``
read them back (``read_health``).

Example:
    >>> from edgekit.store import serve                                     # doctest: +SKIP
    >>> with serve("/var/lib/app/models", health_every_s=5) as m:          # doctest: +SKIP
    ...     m.predict(x)
    >>> read_health("/var/lib/app/models")["latest"]["calls"]               # doctest: +SKIP
    1
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from ..fsutil import atomic_write_text
from ..runtime.incidents import SharedJsonl

SCHEMA = "edgekit.health/1"
FOLDER = "health"
HISTORY = "history.jsonl"
HISTORY_MAX_BYTES = 256_000  # about 1,000 lines; one backup: a day at one line per 10 s needs ~8,600, so
HISTORY_BACKUPS = 1  # plots show the last few hours at full rate; older lines rotate out (counted as dropped)
KEEP_SNAPSHOTS = 8  # snapshot files of past processes kept (each restart writes a new <host>-<pid>.json)
ERROR_KINDS = ("invoke", "output", "load")


def health_dir(root: str | Path) -> Path:
    return Path(root) / FOLDER


def compact(h: dict[str, Any], *, served: dict[str, Any] | None = None,
            actions: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """The snapshot written to disk, from an EdgeModel.health() document (and the store's part).

    ``actions``: incident counts per kind and action (IncidentLog.actions()), for the fallback rates."""
    calls = int(h.get("calls") or 0)
    counts = dict(h.get("incidents") or {})
    fallback = {k: n for k, per in (actions or {}).items() for a, n in per.items() if a == "fallback" and n}
    defaulted = {k: n for k, per in (actions or {}).items() for a, n in per.items() if a == "default" and n}

    def rates(c: dict[str, int]) -> dict[str, float]:
        return {k: round(n / calls, 6) for k, n in c.items()} if calls else {}

    inputs = {}
    for name, s in (h.get("inputs") or {}).items():
        inputs[name] = {"psi_max": s.get("psi_max"), "drift": s.get("drift"),
                        "worst_channel": s.get("psi_worst_channel")}
    outputs = {}
    for name, s in (h.get("outputs") or {}).items():
        share = s.get("top1_share")
        outputs[name] = {"top1_share": share, "top1_max": max(share.values()) if share else None}
    ood = h.get("ood_score")
    lat = h.get("latency_ms") or {}
    log = h.get("incident_log") or {}
    sh = h.get("shadow")
    doc = {
        "schema": SCHEMA, "time": _iso(time.time()), "unix": round(time.time(), 3),
        "host": socket.gethostname(), "pid": os.getpid(),
        "sha256": (h.get("model") or {}).get("sha256"),
        "calls": calls, "window": h.get("window"), "flagged_share": h.get("flagged_share"),
        "ood_score": ood if isinstance(ood, dict) else None,
        "latency_ms": {"p50": lat.get("p50"), "p95": lat.get("p95")} if lat else None,
        "incidents": counts, "incident_rates": rates(counts),
        "error_rate": round(sum(counts.get(k, 0) for k in ERROR_KINDS) / calls, 6) if calls else None,
        "fallbacks": fallback, "fallback_rates": rates(fallback), "defaults": defaulted,
        "fallback_active": bool(h.get("fallback_active")), "security_ok": (h.get("security") or {}).get("ok", True),
        "inputs": inputs, "outputs": outputs,
        "shadow": {k: sh.get(k) for k in ("compared", "disagreed", "disagreement_rate")} if sh else None,
        "incident_log": {"dropped_records": log.get("dropped_records", 0), "rotations": log.get("rotations", 0)},
    }
    if served is not None:
        doc.update(via=served.get("via"), canary=served.get("canary"))
    return doc


def history_line(doc: dict[str, Any]) -> dict[str, Any]:
    """What a plot needs from a snapshot (one short JSON line)."""
    psi = [v["psi_max"] for v in doc["inputs"].values() if isinstance(v.get("psi_max"), (int, float))]
    return {"time": doc["time"], "unix": doc["unix"], "pid": doc["pid"], "sha256": (doc["sha256"] or "")[:16],
            "calls": doc["calls"], "flagged_share": doc["flagged_share"], "error_rate": doc["error_rate"],
            "fallback_rate": round(sum(doc["fallback_rates"].values()), 6) if doc["fallback_rates"] else 0.0,
            "psi_max": max(psi) if psi else None, "p95_ms": (doc["latency_ms"] or {}).get("p95")}


class HealthWriter:
    """Writes one process's snapshots into ``root/health`` at most once per ``every_s`` seconds.

    ``due()`` is what the call path runs (a clock read and a compare); ``write_soon(fn)`` hands the
    work to a background thread; ``write_now(fn)`` writes in the caller (on close). ``fn`` returns
    the snapshot document. A read-only or full store turns the writer off (the app keeps serving).
    """

    def __init__(self, root: str | Path, every_s: float = 10.0, name: str | None = None):
        self.folder = health_dir(root)
        self.every_s = float(every_s)
        self.path = self.folder / f"{name or _default_name()}.json"
        self.next_at = time.monotonic() + self.every_s
        self.enabled = True
        self.writes = 0
        self._busy = threading.Lock()
        self._history: SharedJsonl | None = None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._history = SharedJsonl(self.folder / HISTORY, HISTORY_MAX_BYTES, HISTORY_BACKUPS)
            _prune(self.folder, keep=KEEP_SNAPSHOTS, spare=self.path)
        except Exception:  # read-only store, no room: serving matters more than the snapshot
            self.enabled = False

    def due(self) -> bool:
        return self.enabled and time.monotonic() >= self.next_at

    def write_soon(self, make) -> None:
        """Write from a daemon thread, unless a write is already running (then this one is skipped)."""
        self.next_at = time.monotonic() + self.every_s
        if not self._busy.acquire(blocking=False):
            return
        threading.Thread(target=self._write, args=(make,), name="edgekit-health", daemon=True).start()

    def write_now(self, make) -> None:
        self.next_at = time.monotonic() + self.every_s
        self._busy.acquire()  # waits for a background write still running; _write releases
        self._write(make)

    def _write(self, make) -> None:
        try:
            if not self.enabled:
                return
            doc = make()
            if doc is None:
                return
            atomic_write_text(self.path, json.dumps(doc, default=str) + "\n")
            if self._history is not None:
                self._history.write((json.dumps(history_line(doc), default=str) + "\n").encode("utf-8"))
            self.writes += 1
        except Exception:  # never let a snapshot take the app down; a later one may work
            pass
        finally:
            self._busy.release()

    def close(self) -> None:
        if self._history is not None:
            self._history.close()
            self._history = None


def read_health(root: str | Path, *, history: int = 0) -> dict[str, Any]:
    """Every process's latest snapshot in ``root/health`` (newest first), ``latest`` and the last ``history``
    lines of the history (oldest first). Works on any store, also when nothing was written yet."""
    folder = health_dir(root)
    snaps = []
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            doc = json.loads(p.read_text())
        except (OSError, ValueError):
            continue  # a file replaced while listed, or one changed by hand
        if isinstance(doc, dict) and doc.get("schema") == SCHEMA:
            doc["file"] = p.name
            doc["age_s"] = round(max(0.0, time.time() - float(doc.get("unix") or 0)), 1)
            snaps.append(doc)
    snaps.sort(key=lambda d: d.get("unix") or 0, reverse=True)
    out: dict[str, Any] = {"snapshots": snaps, "latest": snaps[0] if snaps else None}
    if history:
        out["history"] = read_history(folder, history)
    return out


def read_history(folder: Path, last: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for p in (folder / f"{HISTORY}.{HISTORY_BACKUPS}", folder / HISTORY):  # the backup holds the older lines
        try:
            raw = p.read_bytes()
        except OSError:
            continue
        for line in raw.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                lines.append(rec)
    return lines[-last:]


def _default_name() -> str:
    host = "".join(c if c.isalnum() or c in "-_." else "_" for c in socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def _prune(folder: Path, keep: int, spare: Path) -> None:
    """Remove the oldest snapshot files past ``keep`` (processes long gone), never ``spare``."""
    files = sorted((p for p in folder.glob("*.json") if p != spare), key=lambda p: p.stat().st_mtime, reverse=True)
    for p in files[keep - 1:]:
        p.unlink(missing_ok=True)


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"
