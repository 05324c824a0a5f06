"""Where things live in a device store, and how they reach the disk so a power cut cannot tear them.

::

    STORE/
      index.json          which version is active, the previous good ones, the candidate (replaced atomically)
      events.jsonl        the history: activations, stagings, promotions, rejections, rollbacks (appended, fsynced)
      incidents.jsonl     incidents of the served models and of the store itself (edgekit.runtime format)
      incidents.jsonl.*   its backups (.1, .2), its lock and its count of dropped records (runtime.incidents)
      objects/<sha256>/   one version: model.tflite, model.manifest.json, model.sig (when signed)
      canary/<sha256>.json  the latest canary figures of a candidate, written by the process running it
      health/             health snapshots of the serving processes and their history (edgekit.store.health)
      trust/*.pem         public keys the store trusts (once there is one, only signed models get in)
      tmp/                versions being written; leftovers from a power cut are removed by the next writer
      lock                one writer at a time (flock); readers never take it

Every durable write is: write a temporary file in the same folder, fsync it, rename it over the
target, fsync the folder. A reader sees the old file or the new one, never half of one.

Example:
    >>> import tempfile
    >>> lay = Layout(tempfile.mkdtemp())
    >>> lay.object("ab" * 32).name == "ab" * 32
    True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

SCHEMA = "edgekit.store/1"
MODEL = "model.tflite"
MANIFEST = "model.manifest.json"
SIGNATURE = "model.sig"
# An ONNX version keeps its suffix (tools that pick the engine by name see it) and its companions are
# named after the whole file name, as next to any .onnx (manifest.companion_stem).
MODEL_ONNX = "model.onnx"


def model_name(data: bytes) -> str:
    """The stored model's file name for these bytes: model.onnx for an ONNX model, else model.tflite."""
    from ..engine.onnxrt import is_onnx

    return MODEL_ONNX if is_onnx(data) else MODEL


def files_of(folder: Path, model: str | None = None) -> tuple[Path, Path, Path]:
    """(model, manifest, signature) of a stored version; ``model``: the model's file name when writing
    one (model_name), else the one present (model.onnx or model.tflite)."""
    from ..manifest import manifest_path_for
    from ..signing import signature_path_for

    path = folder / model if model else (folder / MODEL_ONNX if (folder / MODEL_ONNX).is_file() else folder / MODEL)
    return path, manifest_path_for(path), signature_path_for(path)


class Layout:
    """Paths inside one store folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.index = self.root / "index.json"
        self.events = self.root / "events.jsonl"
        self.incidents = self.root / "incidents.jsonl"
        self.objects = self.root / "objects"
        self.canary = self.root / "canary"
        self.trust = self.root / "trust"
        self.tmp = self.root / "tmp"
        self.lock = self.root / "lock"

    def object(self, sha256: str) -> Path:
        return self.objects / sha256

    def canary_figures(self, sha256: str) -> Path:
        return self.canary / f"{sha256}.json"


def empty_index() -> dict[str, Any]:
    return {"schema": SCHEMA, "generation": 0, "active": None, "good": [], "candidate": None, "bad": [],
            "last_event": None}


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes) -> None:
    """Write and fsync ``path`` (a new file; no rename: the caller renames the folder or the file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(path: Path, data: bytes, step: Callable[[str], None] = lambda name: None) -> None:
    """temp + fsync + rename + fsync of the folder; ``step`` is called between them (crash tests hook in)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_file(tmp, data)
        step("index-written")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    step("index-renamed")
    fsync_dir(path.parent)


def append_line(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line and fsync it (O_APPEND: lines from several processes do not interleave)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(record, default=str) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lines(path: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The JSON lines of ``path`` (the last ``last``); a torn final line from a power cut is skipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    lines = raw.splitlines()
    for line in lines if last is None else lines[-last:]:
        try:
            rec = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        if isinstance(rec, dict):  # a line changed by hand into something else is skipped like a torn one
            out.append(rec)
    return out
