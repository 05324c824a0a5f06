"""Incident records: every time the guard did something other than pass a call through.

A record says when, which kind of failure, why, what was done, which model (sha256),
and a summary of the input (shape, dtype, min, max, mean, which samples; one summary per
input name for several inputs). Raw input values are included only with
``Policy(log_inputs=True)``, at most ``max_values`` per input (the rest is counted in
``values_dropped``). Records go to an in-memory ring (``EdgeModel.incidents()``) and, when a
path is given, to a JSONL file, one JSON object per line, appended and flushed as they happen.

The file is bounded: past ``max_bytes`` it is rotated (``incidents.jsonl`` -> ``.1`` -> ``.2``,
``backups`` files kept), so an out-of-distribution storm cannot fill an SD card; the disk
holds at most about ``max_bytes x (backups + 1)``. Records in a dropped file are counted
(``status()["dropped_records"]``, shown by ``EdgeModel.health()``).

Kinds: load, invoke, input, ood, output, latency (the policy's failure kinds), and the security
events ``tamper`` (a model file whose sha256 differs from its manifest's) and ``signature`` (not
signed by a trusted key), recorded whatever the policy then does.

Example:
    >>> log = IncidentLog(path=None)
    >>> rec = log.add("ood", "OOD score 3.1 > 1.0", "allow", "ab12", samples=[0])
    >>> rec["kind"], rec["action"], len(log.recent())
    ('ood', 'allow', 1)
"""

from __future__ import annotations

import collections
import json
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError

RECENT = 1000  # records kept in memory
KINDS = ("load", "tamper", "signature", "invoke", "input", "ood", "output", "latency")
SECURITY_KINDS = ("tamper", "signature")  # from the integrity step in EdgeModel.load


SUMMARY_ELEMENTS = 65_536  # values a summary reads: a refused 2 GB batch must not cost 2 GB more to describe


def bounded_view(x: np.ndarray, limit: int = SUMMARY_ELEMENTS) -> np.ndarray:
    """A view of at most ``limit`` elements of ``x``, spread evenly (strided slices: nothing is copied).

    Trailing axes are kept whole while they fit, the next one is strided, and the axes before it
    give their first index (a step as long as the axis). Example:
        >>> bounded_view(np.zeros((10**6, 64)), 1000).shape
        (15, 64)
    """
    index, room = [], max(int(limit), 1)
    for d in reversed(x.shape):
        if d <= room:
            index.append(slice(None))
            room //= max(d, 1)
        else:
            step = -(-d // room)  # ceil: at most ``room`` indices
            index.append(slice(None, None, step))
            room = 1
    return x[tuple(reversed(index))]


def summarize(x: Any) -> dict[str, Any]:
    """Shape, dtype and value summary of an input, never the values themselves (no warnings on any dtype).

    Large inputs are summarised from an evenly spread sample of SUMMARY_ELEMENTS values
    (``summarized_values`` says how many); a masked array is read without its mask."""
    if isinstance(x, dict):
        return {str(k): summarize(v) for k, v in x.items()}
    if not isinstance(x, np.ndarray):
        return {"type": type(x).__name__}
    out: dict[str, Any] = {"shape": list(x.shape), "dtype": x.dtype.name}
    if x.size and x.dtype.kind in "iuf":  # complex, bool, object, strings: shape and dtype only
        part = np.asarray(bounded_view(x))  # asarray: the values under a numpy.ma mask count too
        if part.size < x.size:
            out["summarized_values"] = int(part.size)
        finite = part[np.isfinite(part)] if part.dtype.kind == "f" else part
        out["nonfinite"] = int(part.size - finite.size)
        if finite.size:
            out.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean(dtype=np.float64)))
    return out


class IncidentLog:
    """Thread-safe incident sink: memory ring plus an optional JSONL file, rotated by size."""

    def __init__(self, path: str | Path | None = None, *, log_inputs: bool = False, max_bytes: int = 5_000_000,
                 backups: int = 2, max_values: int = 4096):
        self.path = Path(path) if path is not None else None
        self.log_inputs = log_inputs
        self.max_bytes, self.backups, self.max_values = int(max_bytes), int(backups), int(max_values)
        self._recent: collections.deque = collections.deque(maxlen=RECENT)
        self._counts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        self._fh: list = [None]  # the open file, in a box a finalizer can close without a ResourceWarning
        self._size = 0
        self._lines = 0  # records in the current file
        self._backup_lines: list[int | None] = []  # records per rotated file, newest first (None: unknown)
        self.rotations = self.dropped_records = self.dropped_values = 0
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh[0] = open(self.path, "a", encoding="utf-8")
                self._size = self.path.stat().st_size
            except OSError as err:
                raise UsageError(f"{self.path}: cannot write the incident log ({err.strerror})") from None
            self._backup_lines = [None for i in range(1, self.backups + 1) if self._backup(i).exists()]
            weakref.finalize(self, _close, self._fh)

    def _backup(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def add(self, kind: str, reason: str, action: str, sha256: str | None, *, x: Any = None,
            samples: list[int] | None = None, **extra: Any) -> dict[str, Any]:
        """Record one incident and return it."""
        rec: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
            "kind": kind, "reason": reason, "action": action, "model_sha256": sha256,
        }
        if samples is not None:
            rec["samples"] = samples[:1000]
        if x is not None:
            rec["input"] = summarize(x)
            if self.log_inputs:
                self._add_values(rec["input"], x)
        rec.update(extra)
        line = json.dumps(rec, default=str) + "\n"
        with self._lock:
            self._recent.append(rec)
            self._counts[kind] += 1
            if self._fh[0] is not None:
                self._write(line)
        return rec

    def _add_values(self, summary: dict, x: Any) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                self._add_values(summary[str(k)], v)
            return
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iuf":
            return
        if x.size <= self.max_values:
            summary["values"] = x.astype(np.float64).tolist()
            return
        kept = x.flat[: self.max_values]  # copies only these (reshape(-1) copies all of a strided view)
        summary["values"] = np.asarray(kept, dtype=np.float64).tolist()  # flattened: the first max_values only
        if x.size > kept.size:
            summary["values_dropped"] = int(x.size - kept.size)
            self.dropped_values += int(x.size - kept.size)

    def _write(self, line: str) -> None:
        size = len(line.encode("utf-8"))
        try:
            if self._size and self._size + size > self.max_bytes:
                self._rotate()
            if self._fh[0] is None:  # a rotation that failed to reopen: try again
                self._fh[0] = open(self.path, "a", encoding="utf-8")
            self._fh[0].write(line)
            self._fh[0].flush()  # each record reaches the OS as it happens: nothing lost if the app dies
        except OSError:  # a full or failing disk must not take predict down: count it as dropped
            self.dropped_records += 1
            _close(self._fh)  # drop what the buffer still holds; the next record reopens the file
            return
        self._size += size
        self._lines += 1

    def _rotate(self) -> None:
        self._fh[0].close()
        self._fh[0] = None
        if self.backups == 0:
            self.dropped_records += self._lines
            self.path.unlink(missing_ok=True)
        else:
            if len(self._backup_lines) >= self.backups:  # the oldest file goes
                gone = self._backup_lines.pop()
                self.dropped_records += gone or 0
                self._backup(self.backups).unlink(missing_ok=True)
            for i in range(len(self._backup_lines), 0, -1):
                os.replace(self._backup(i), self._backup(i + 1))
            os.replace(self.path, self._backup(1))
            self._backup_lines.insert(0, self._lines)
        self.rotations += 1
        self._fh[0] = open(self.path, "a", encoding="utf-8")
        self._size = self._lines = 0

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._recent)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def status(self) -> dict[str, Any]:
        """The file's bounds and what was dropped to keep them."""
        with self._lock:
            return {"path": None if self.path is None else str(self.path), "max_bytes": self.max_bytes,
                    "backups": self.backups, "bytes": self._size, "rotations": self.rotations,
                    "dropped_records": self.dropped_records, "dropped_values": self.dropped_values}

    def close(self) -> None:
        """Close the file (later records stay in memory only)."""
        with self._lock:
            _close(self._fh)


def _close(box: list) -> None:
    fh, box[0] = box[0], None
    if fh is not None:
        try:
            fh.close()
        except OSError:  # a full disk refuses the buffered rest: it was counted as dropped already
            pass
