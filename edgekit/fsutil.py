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
import stat
import tempfile
from pathlib import Path


def cache_dir(part: str) -> Path:
    """edgekit's cache folder for ``part`` ("verified", "native"): ``$EDGEKIT_CACHE_DIR/part``, else
    ``~/.cache/edgekit/part``."""
    env = os.environ.get("EDGEKIT_CACHE_DIR")
    key = (env, os.environ.get("HOME"), part)  # what the folder depends on (tests change the two variables)
    found = _cache_dirs.get(key)
    if found is None:  # a Path built once per process (Path.home() and two joins: ~14 us, on every load)
        found = _cache_dirs[key] = (Path(env) if env else Path.home() / ".cache" / "edgekit") / part
    return found


_cache_dirs: dict[tuple, Path] = {}


def keep_newest(folder: Path, keep: int, pattern: str = "*") -> None:
    """Delete all but the ``keep`` newest files of ``folder`` matching ``pattern``: a cache that grows with
    every model or build stays bounded. Files another process removed first are skipped.

    Example: ``keep_newest(cache_dir("native"), 4, "guard-*.so")``
    """
    found = []
    for entry in folder.glob(pattern):
        try:
            found.append((entry.stat().st_mtime_ns, entry))
        except OSError:
            pass
    for _, entry in sorted(found)[:-keep] if keep > 0 else sorted(found):
        try:
            entry.unlink()
        except OSError:
            pass


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


MODEL_MAX_BYTES = 2 << 30  # 2 GiB: the flatbuffer format's own limit for a .tflite held in memory
JSON_MAX_BYTES = 64 << 20  # 64 MiB: json.loads takes several times a file's size in RAM; callers may cap lower
_JSON_MAX_DIGITS = 40  # no edgekit JSON needs an integer near this; int() of a huge one is slow or refused


def read_bytes(path: str | Path, error: type[Exception], what: str = "file", head: int | None = None,
               max_bytes: int = MODEL_MAX_BYTES) -> bytes:
    """A regular file's bytes (or its first ``head`` bytes), at most ``max_bytes`` of them.

    A missing or unreadable file, a FIFO, a device (a symlink to /dev/zero) or a file over the
    cap raises ``error`` in one line, before anything is read.

    Example:
        >>> read_bytes("/dev/zero", ValueError, "model file")
        Traceback (most recent call last):
        ...
        ValueError: /dev/zero: not a regular file (a character device); give the model file itself
    """
    p = Path(path)
    try:
        # O_NONBLOCK: opening a FIFO with no writer would block forever; regular files ignore it.
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise error(f"{p}: {what} not found") from None
    except OSError as err:
        raise error(f"{p}: cannot read the {what} ({err.strerror})") from None
    try:  # a folder opens fine read-only: fstat tells
        size = _check_regular(os.fstat(fd), p, error, what, max_bytes if head is None else None)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as fh:
        try:
            # read(n) allocates n bytes up front: ask for the size fstat gave, never for the cap
            data = fh.read(min(head, size) if head is not None else size)
            grew = head is None and fh.read(1)
        except OSError as err:
            raise error(f"{p}: cannot read the {what} ({err.strerror})") from None
    if grew:
        raise error(f"{p}: the {what} grew while it was read; try again when it is complete")
    return data


def _check_regular(st: os.stat_result, p: Path, error: type[Exception], what: str, max_bytes: int | None) -> int:
    """The size of what was opened (fstat: not a path that may have changed since); refused unless
    it is a regular file within the cap."""
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{p}: is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{p}: not a regular file ({_kind(st.st_mode)}); give the {what} itself")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{p}: the {what} is {st.st_size:,} bytes, over the {max_bytes:,}-byte cap; is it the right file?")
    return st.st_size


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > _JSON_MAX_DIGITS:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


def read_json(path: str | Path, error: type[Exception], what: str = "JSON file", max_bytes: int = JSON_MAX_BYTES):
    """Parse a JSON file of at most ``max_bytes``; unreadable or invalid JSON raises ``error`` with the file and line."""
    return parse_json(read_bytes(path, error, what, max_bytes=max_bytes), path, error, what)


def parse_json(data: bytes, label: str | Path, error: type[Exception], what: str = "JSON file"):
    """Parse JSON bytes already read; invalid JSON raises ``error`` naming ``label`` and the line.

    Hostile JSON (deep nesting, an integer of thousands of digits) is invalid JSON here, not a
    RecursionError or ValueError escaping to the caller.
    """
    try:
        return json.loads(data, parse_int=_bounded_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        line = f" (line {err.lineno})" if isinstance(err, json.JSONDecodeError) else ""
        raise error(f"{label}: {what} is not valid JSON{line}: {getattr(err, 'msg', err)}") from None
    except RecursionError:
        raise error(f"{label}: {what} is not valid JSON: nested too deeply") from None
    except ValueError as err:  # _bounded_int, or Python's own limit on integer digits
        raise error(f"{label}: {what} is not valid JSON: {' '.join(str(err).split())[:120]}") from None
