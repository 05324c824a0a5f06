"""Read the new records of a rotated incident log since a cursor: nothing twice, and every loss counted.

The log (edgekit.runtime.incidents.SharedJsonl) is ``incidents.jsonl`` with backups ``.1``, ``.2``;
rotation renames files (their inode stays) and counts the records of the file that falls off in
``incidents.jsonl.dropped``. The cursor names the newest file by inode and a byte offset in it, the
dropped count at that time, and how many lines were read from each file then present. On the next
pull: the cursor's file is found by its inode wherever rotation moved it, read on from the offset,
then every newer file whole. Records lost to this reader are the device's new drops minus the
lines it had already read from the files that fell off (those were not lost, only rotated).

Files are listed, measured and opened under the writers' lock (``<log>.lock``), then read
without it up to the measured sizes: the app is never blocked by a slow read.

Example:
    >>> import tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "incidents.jsonl"
    >>> _ = log.write_text('{"kind": "ood"}\\n')
    >>> first = pull(log, None)
    >>> len(first["records"]), len(pull(log, first["cursor"])["records"])
    (1, 0)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..runtime.incidents import dropped_records

MAX_BACKUPS = 64


def _files(log: Path) -> list[Path]:
    """The log's files, oldest first (``.N`` ... ``.1``, then the log itself)."""
    backups = []
    for i in range(1, MAX_BACKUPS + 1):
        p = log.with_name(f"{log.name}.{i}")
        if not p.exists():
            break
        backups.append(p)
    return list(reversed(backups)) + [log]


def pull(log: str | Path, cursor: dict[str, Any] | None, *, since: str | None = None) -> dict[str, Any]:
    """New records of ``log`` after ``cursor`` (None: everything there is), and the next cursor.

    ``since``: an ISO time; older records are skipped (not returned) but the cursor moves past them.
    Returns records, cursor, device_dropped_total, device_dropped_since, lost, unreadable.
    """
    log = Path(log)
    _check_cursor(cursor)
    opened: list[tuple[Path, int, int, Any]] = []  # (path, inode, size, file)
    lock_fd = None
    try:
        try:
            lock_fd = os.open(f"{log}.lock", os.O_RDONLY)
            fcntl.flock(lock_fd, fcntl.LOCK_SH)  # writers append and rotate under LOCK_EX: a still picture
        except OSError:
            lock_fd = None  # no writer ever ran (no lock file) or a read-only view: read as is
        for p in _files(log):
            try:
                fh = open(p, "rb")
            except FileNotFoundError:
                continue
            st = os.fstat(fh.fileno())
            opened.append((p, _identity(st.st_ino, fh), st.st_size, fh))
        dropped_now = dropped_records(log)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)  # closing releases the lock
    try:
        return _read(opened, cursor or {}, dropped_now, since)
    finally:
        for *_, fh in opened:
            fh.close()


def _check_cursor(cursor: Any) -> None:
    """A cursor this module wrote, or a one-line UsageError (a hand-edited cursors.json)."""
    if cursor is None:
        return
    ok = (isinstance(cursor, dict) and isinstance(cursor.get("file"), (str, type(None)))
          and _count(cursor.get("offset", 0)) and _count(cursor.get("dropped", 0))
          and isinstance(cursor.get("read", {}), dict)
          and all(isinstance(k, str) and _count(v) for k, v in cursor.get("read", {}).items()))
    if not ok:
        raise UsageError(f"not an incident cursor edgekit wrote: {json.dumps(cursor, default=str)[:120]}; "
                         "remove the device's entry from cursors.json to pull its whole log again")


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _identity(inode: int, fh) -> str:
    """``inode:hash of the first line``: a deleted file's inode is soon reused by a new one (seen on the
    second rotation), so the inode alone would send the cursor into the wrong file. Files are only
    appended to, so the first line never changes once written ("" while the file has no whole line)."""
    first = fh.readline(65536)
    fh.seek(0)
    tag = hashlib.sha256(first).hexdigest()[:16] if first.endswith(b"\n") else ""
    return f"{inode}:{tag}"


def _start(ids: list[str], sizes: list[int], cursor: dict[str, Any], read_before: dict[str, int]) -> tuple[int, int]:
    """(index of the file to read on from, offset in it)."""
    known = str(cursor.get("file") or "")
    if known.partition(":")[2]:  # a file with a first line: found by its identity wherever rotation moved it
        for i, ident in enumerate(ids):
            if ident == known and sizes[i] >= int(cursor.get("offset") or 0):
                return i, int(cursor.get("offset") or 0)
        return 0, 0  # rotated out: everything there is now is newer than what was read
    # The cursor's file had no whole line (nothing read from it): its inode alone is ambiguous (reused by
    # the next file), so start at the first file not read before; the files read before are complete.
    for i, ident in enumerate(ids):
        if ident not in read_before:
            return i, 0
    return len(ids), 0


def _read(opened, cursor: dict[str, Any], dropped_now: int, since: str | None) -> dict[str, Any]:
    read_before = {str(k): int(v) for k, v in (cursor.get("read") or {}).items() if int(v) > 0}
    ids = [ident for _, ident, _, _ in opened]
    start_i, start_off = _start(ids, [size for _, _, size, _ in opened], cursor, read_before)
    records: list[dict[str, Any]] = []
    unreadable = 0
    read_now: dict[str, int] = {}
    next_cursor: dict[str, Any] = {"file": None, "offset": 0}
    for i, (_, key, size, fh) in enumerate(opened):
        if i < start_i:  # read in an earlier pull and unchanged since (a backup is never appended to)
            read_now[key] = read_before.get(key, 0)
        else:
            off = start_off if i == start_i else 0
            fh.seek(off)
            data = fh.read(size - off)
            end = data.rfind(b"\n") + 1  # a line still being written (or torn) waits for the next pull
            lines = data[:end].splitlines()
            read_now[key] = (read_before.get(key, 0) if off else 0) + len(lines)
            for line in lines:
                try:
                    rec = json.loads(line)
                except (ValueError, UnicodeDecodeError, RecursionError):
                    unreadable += 1
                    continue
                if not isinstance(rec, dict):
                    unreadable += 1
                elif since is None or str(rec.get("time", "")) >= since:
                    records.append(rec)
        if i == len(opened) - 1:
            offset = (off + end) if i >= start_i else int(cursor.get("offset") or 0)
            # a file with no whole line until now may have one by now: name it by its first line if so
            ident = key if key.partition(":")[2] else _identity(int(key.partition(":")[0]), fh)
            next_cursor = {"file": ident if offset else key, "offset": offset}
    gone = sum(n for k, n in read_before.items() if k not in ids)  # read by us, then rotated out
    dropped_since = max(0, dropped_now - int(cursor.get("dropped") or 0))
    lost = max(0, dropped_since - gone)  # a first pull: everything the device dropped before was lost to us
    next_cursor.update(dropped=dropped_now, read={k: n for k, n in read_now.items() if n})
    return {"records": records, "cursor": next_cursor, "device_dropped_total": dropped_now,
            "device_dropped_since": dropped_since, "lost": lost, "unreadable": unreadable}


def count_kinds(log: str | Path) -> dict[str, Any]:
    """Records per kind in the log and its backups, without parsing every line (status of a fleet)."""
    kinds: dict[str, int] = {}
    total = 0
    for p in _files(Path(log)):
        try:
            raw = p.read_bytes()
        except OSError:
            continue
        for line in raw.splitlines():
            total += 1
            at = line.find(b'"kind": "')
            if at >= 0:
                k = line[at + 9: line.find(b'"', at + 9)].decode("utf-8", "replace")
                kinds[k] = kinds.get(k, 0) + 1
    first = _first_time(Path(log))
    return {"records": total, "by_kind": kinds, "dropped": dropped_records(log), "since": first}


def _first_time(log: Path) -> str | None:
    for p in _files(log):
        try:
            with open(p, "rb") as fh:
                return json.loads(fh.readline()).get("time")
        except (OSError, ValueError, AttributeError):
            continue
    return None
