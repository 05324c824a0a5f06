"""Atomic file writes: a temporary file in the same folder, fsync, then rename.

A crash mid-write leaves the old file (or nothing), never half a file.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "out.json"
    >>> atomic_write_text(p, "{}")
    >>> p.read_text()
    '{}'
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def _umask() -> int:
    # os.umask can only be read by setting it; /proc tells without touching it (Linux)
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes 0600 files; give the result the mode a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """sha256 of a file, or of every file under a folder (sorted, path-salted) for SavedModels."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def read_bytes(path: str | Path, error: type[Exception], what: str = "file", head: int | None = None) -> bytes:
    """A file's bytes (or its first ``head`` bytes); a missing or unreadable file raises ``error`` in one line."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            return fh.read(head) if head is not None else fh.read()
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except IsADirectoryError:
        raise error(f"{p}: is a folder, not a {what}") from None
    except OSError as err:
        raise error(f"{p}: cannot read the {what} ({err.strerror})") from None


def read_json(path: str | Path, error: type[Exception], what: str = "JSON file"):
    """Parse a JSON file; unreadable or invalid JSON raises ``error`` with the file and line."""
    return parse_json(read_bytes(path, error, what), path, error, what)


def parse_json(data: bytes, label: str | Path, error: type[Exception], what: str = "JSON file"):
    """Parse JSON bytes already read; invalid JSON raises ``error`` naming ``label`` and the line."""
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        line = f" (line {err.lineno})" if isinstance(err, json.JSONDecodeError) else ""
        raise error(f"{label}: {what} is not valid JSON{line}: {getattr(err, 'msg', err)}") from None
