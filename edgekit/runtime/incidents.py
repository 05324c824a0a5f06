"""Incident records: every time the guard did something other than pass a call through.

A record says when, which kind of failure, why, what was done, which model (sha256),
and a summary of the input (shape, dtype, min, max, mean, which samples). Raw input
values are included only with ``Policy(log_inputs=True)``. Records go to an in-memory
ring (``EdgeModel.incidents()``) and, when a path is given, to a JSONL file, one
JSON object per line, appended and flushed as they happen.

Example:
    >>> log = IncidentLog(path=None)
    >>> rec = log.add("ood", "OOD score 3.1 > 1.0", "allow", "ab12", samples=[0])
    >>> rec["kind"], rec["action"], len(log.recent())
    ('ood', 'allow', 1)
"""

from __future__ import annotations

import collections
import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UsageError

RECENT = 1000  # records kept in memory


def summarize(x: Any) -> dict[str, Any]:
    """Shape, dtype and value summary of an input, never the values themselves."""
    if not isinstance(x, np.ndarray):
        return {"type": type(x).__name__}
    out: dict[str, Any] = {"shape": list(x.shape), "dtype": x.dtype.name}
    if x.size and np.issubdtype(x.dtype, np.number):
        finite = x[np.isfinite(x)] if np.issubdtype(x.dtype, np.floating) else x
        out["nonfinite"] = int(x.size - finite.size)
        if finite.size:
            out.update(min=float(finite.min()), max=float(finite.max()), mean=float(finite.mean()))
    return out


class IncidentLog:
    """Thread-safe incident sink: memory ring plus an optional JSONL file."""

    def __init__(self, path: str | Path | None = None, *, log_inputs: bool = False):
        self.path = Path(path) if path is not None else None
        self.log_inputs = log_inputs
        self._recent: collections.deque = collections.deque(maxlen=RECENT)
        self._counts: collections.Counter = collections.Counter()
        self._lock = threading.Lock()
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch()
            except OSError as err:
                raise UsageError(f"{self.path}: cannot write the incident log ({err.strerror})") from None

    def add(self, kind: str, reason: str, action: str, sha256: str | None, *, x: Any = None,
            samples: list[int] | None = None, **extra: Any) -> dict[str, Any]:
        """Record one incident and return it."""
        rec: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
            "kind": kind, "reason": reason, "action": action, "model_sha256": sha256,
        }
        if samples is not None:
            rec["samples"] = samples
        if x is not None:
            rec["input"] = summarize(x)
            if self.log_inputs and isinstance(x, np.ndarray):
                rec["input"]["values"] = np.asarray(x, np.float64).tolist()
        rec.update(extra)
        line = json.dumps(rec, default=str) + "\n"
        with self._lock:
            self._recent.append(rec)
            self._counts[kind] += 1
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(line)
        return rec

    def recent(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._recent)

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)
