"""Incident records: every time the guard did something other than pass a call through.

A record says when, which kind of failure, why, what was done, which model (sha256),
and a summary of the input (shape, dtype, min, max, mean, which samples; one summary per
input name for several inputs). Raw input values are included only with
``Policy(log_inputs=True)``, at most ``max_values`` per input (the rest is counted in
``values_dropped``). Records go to an in-memory ring (``EdgeModel.incidents()``) and, when a
path is given, to a JSONL file, one JSON object per line, appended and flushed as they happen.

The file is bounded: past ``max_bytes`` it is rotated (``incidents.jsonl`` -> ``.1`` -> ``.2``,
``backups`` files kept), so an out-of-distribution storm cannot fill an SD card; the disk
holds at most about ``max_bytes x (backups + 1)``. Any number of writers may share one file
(threads, several logs, processes, every model a store serves): each record is appended, and
the file rotated, under ``flock`` on ``<file>.lock``, so every record is on disk or counted as
dropped. The count lives in ``<file>.dropped`` (JSON, all writers together; ``dropped_records()``,
``status()["dropped_records"]``, ``EdgeModel.health()``): records of a backup rotated out, and
records a full or failing disk refused (the log keeps trying and writes again once there is room).

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
import errno
import fcntl
import json
import os
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError
from ..fsutil import atomic_write_text

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
        self._actions: collections.Counter = collections.Counter()  # (kind, action): fallback rates in health
        self._lock = threading.Lock()
        self._file = SharedJsonl(self.path, self.max_bytes, self.backups) if self.path is not None else None
        self._writing = self._file is not None  # False only after close(): a failed write keeps the file
        self.dropped_values = 0

    @classmethod
    def for_policy(cls, path: str | Path | None, policy: Any) -> "IncidentLog":
        """The log a Policy asks for: ``IncidentLog.for_policy("incidents.jsonl", Policy())``."""
        return cls(path, log_inputs=policy.log_inputs, max_bytes=policy.incident_log_max_bytes,
                   backups=policy.incident_log_backups, max_values=policy.max_logged_values)

    @property
    def rotations(self) -> int:
        """Rotations this log did (other writers of the file rotate it too)."""
        return self._file.rotations if self._file is not None else 0

    @property
    def dropped_records(self) -> int:
        """Records of the file dropped by any of its writers (see dropped_records())."""
        return self._file.dropped() if self._file is not None else 0

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
            self._actions[kind, action] += 1
            if self._writing:
                self._file.write(line.encode("utf-8"))
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

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._recent)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def actions(self) -> dict[str, dict[str, int]]:
        """Counts per kind and action, e.g. ``{"ood": {"fallback": 3}}`` (what the policy did about them)."""
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for (kind, action), n in self._actions.items():
                out.setdefault(kind, {})[action] = n
            return out

    def status(self) -> dict[str, Any]:
        """The file's bounds and what was dropped to keep them."""
        with self._lock:
            f = self._file
            return {"path": None if self.path is None else str(self.path), "max_bytes": self.max_bytes,
                    "backups": self.backups, "bytes": f.size() if f else 0, "rotations": self.rotations,
                    "dropped_records": self.dropped_records, "dropped_values": self.dropped_values}

    def close(self) -> None:
        """Close the file (later records stay in memory only)."""
        with self._lock:
            if self._writing:
                self._writing = False
                self._file.close()


def dropped_records(path: str | Path) -> int:
    """Records of the incident file ``path`` counted as dropped by all its writers so far.

    Example: ``dropped_records("store/incidents.jsonl")`` -> 0 when nothing was dropped.
    """
    try:
        return int(json.loads(Path(f"{path}.dropped").read_text())["dropped_records"])
    except (OSError, ValueError, KeyError, TypeError):  # nothing dropped yet (or a hand-edited file)
        return 0


class SharedJsonl:
    """A size-rotated JSONL file that any number of writers share (threads, logs, processes).

    Each line is appended under ``flock`` on ``<path>.lock``, and the file rotates under it, so no
    writer writes into a file another one is dropping; a line cut short by a full disk is cut off.
    What is lost is counted in ``<path>.dropped`` (see dropped_records).

    Example:
        >>> import tempfile
        >>> f = SharedJsonl(Path(tempfile.mkdtemp()) / "i.jsonl", max_bytes=1024, backups=1)
        >>> f.write(b'{"kind": "ood"}\\n'), f.size(), f.dropped()
        (True, 16, 0)
        >>> f.close()
    """

    def __init__(self, path: Path, max_bytes: int, backups: int):
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self.rotations = 0
        self._unsaved = 0  # dropped by this writer, not yet added to <path>.dropped (the disk was full)
        self._fds: list = [None, None]  # [log, lock], in a box a finalizer can close
        try:
            try:
                self._fds[1] = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # a new folder (made only then: the usual load makes no mkdir call)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fds[1] = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            self._open()
        except OSError as err:
            _close_fds(self._fds)
            raise UsageError(f"{path}: cannot write the incident log ({err.strerror})") from None
        weakref.finalize(self, _close_fds, self._fds)

    def write(self, line: bytes) -> bool:
        """Append one line; False when it could not be written (then it is counted as dropped)."""
        try:
            fcntl.flock(self._fds[1], fcntl.LOCK_EX)
        except OSError:
            self._unsaved += 1
            return False
        try:
            self._append(line)
        except OSError:  # a full or failing disk must not take predict down: count it, try again next time
            self._unsaved += 1
            return False
        finally:
            fcntl.flock(self._fds[1], fcntl.LOCK_UN)
        return True

    def _append(self, line: bytes) -> None:
        """Under the lock: rotate when the line does not fit, then write it whole or not at all."""
        if self._fds[0] is None:  # an open that failed (full disk): try again
            self._open()
        st = os.fstat(self._fds[0])
        if st.st_nlink == 0:  # another writer rotated our file out and dropped it: follow the name
            self._open()
            st = os.fstat(self._fds[0])
        if st.st_size and st.st_size + len(line) > self.max_bytes:
            self._open()  # another writer may have rotated already (we still had the old file)
            st = os.fstat(self._fds[0])
            if st.st_size and st.st_size + len(line) > self.max_bytes:
                self._rotate()
                st = os.fstat(self._fds[0])
        written = os.write(self._fds[0], line)
        if written < len(line):  # the disk filled mid-line: cut the piece off so the next line starts clean
            os.ftruncate(self._fds[0], st.st_size)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if self._unsaved:
            self._save_dropped()

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        old, self._fds[0] = self._fds[0], fd
        if old is not None:
            os.close(old)

    def _rotate(self) -> None:
        """Under the lock: shift the backups and count the records of the file that falls off."""
        oldest = self._backup(self.backups) if self.backups else self.path
        self._unsaved += _count_lines(oldest)
        oldest.unlink(missing_ok=True)
        for i in range(self.backups - 1, 0, -1):
            if self._backup(i).exists():
                os.replace(self._backup(i), self._backup(i + 1))
        if self.backups:
            os.replace(self.path, self._backup(1))
        self.rotations += 1
        self._open()
        self._save_dropped()

    def _backup(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _save_dropped(self) -> None:
        """Under the lock: add this writer's drops to <path>.dropped (kept for later when the disk is full)."""
        try:
            total = dropped_records(self.path) + self._unsaved
            atomic_write_text(f"{self.path}.dropped", json.dumps({"dropped_records": total}) + "\n")
            self._unsaved = 0
        except OSError:
            pass

    def dropped(self) -> int:
        """Records of this file dropped by any writer (saved), plus this writer's not yet saved."""
        return dropped_records(self.path) + self._unsaved

    def size(self) -> int:
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def close(self) -> None:
        if self._unsaved and self._fds[1] is not None:
            try:
                fcntl.flock(self._fds[1], fcntl.LOCK_EX)
                self._save_dropped()  # closing the lock's file below releases the lock
            except OSError:
                pass
        _close_fds(self._fds)


def _count_lines(path: Path) -> int:
    """Records in a file about to be dropped (a last line without its newline counts too)."""
    n, last = 0, b"\n"
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                n += chunk.count(b"\n")
                last = chunk[-1:]
    except FileNotFoundError:
        return 0
    return n + (last != b"\n")


def _close_fds(box: list) -> None:
    for i, fd in enumerate(box):
        box[i] = None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass
