"""An append-only JSONL journal of finished trials: a rerun skips what is already done.

Each line is one finished trial: ``{"key": ..., "name": ..., "result": {...}}``. The key
is the sha256 of everything the result depends on (the candidate's parameters, the
source's and data files' sha256, the target, edgekit's version), so a changed model or
dataset never reuses a stale result. Every append is flushed and fsynced before the
trial counts as done; a half-written last line (the process died mid-write) is ignored
and the next append starts on a fresh line.

Example:
    >>> import tempfile, pathlib
    >>> j = Journal(pathlib.Path(tempfile.mkdtemp()) / "journal.jsonl")
    >>> j.append("k1", "fp32", {"size_bytes": 10})
    >>> Journal(j.path).done()["k1"]["size_bytes"]
    10
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from .. import __version__
from ..fsutil import sha256_file


def trial_key(params: dict[str, Any], inputs: dict[str, Any]) -> str:
    """sha256 of the trial's parameters and the hashes of what it reads."""
    blob = json.dumps({"params": params, "inputs": inputs, "edgekit": __version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def input_hashes(**paths: Any) -> dict[str, str | None]:
    """sha256 of each given file or folder (None stays None; arrays are hashed by their bytes)."""
    out: dict[str, str | None] = {}
    for name, p in paths.items():
        if p is None:
            out[name] = None
        elif hasattr(p, "tobytes"):
            out[name] = hashlib.sha256(p.tobytes() + str(p.shape).encode()).hexdigest()
        else:
            out[name] = sha256_file(p)
    return out


class Journal:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def done(self) -> dict[str, dict[str, Any]]:
        """key -> result of every complete line; unreadable lines (a torn last write) are skipped."""
        out: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            return out
        for line in self.path.read_bytes().split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                out[rec["key"]] = rec["result"]
            except (ValueError, KeyError, TypeError):
                continue  # half-written: the trial it belonged to simply runs again
        return out

    def append(self, key: str, name: str, result: dict[str, Any]) -> None:
        line = json.dumps({"key": key, "name": name, "result": result}, sort_keys=True).encode() + b"\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "ab+") as fh:
                fh.seek(0, os.SEEK_END)
                if fh.tell() > 0:
                    fh.seek(-1, os.SEEK_END)
                    if fh.read(1) != b"\n":  # a torn line before us: do not glue onto it
                        fh.write(b"\n")
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
