"""The incident file with several writers and on a full disk (issue 15 items 3, 4): every record is on
disk (the file or a backup) or counted in ``<file>.dropped``.

Real writers (two processes, two logs in this one) and a real full filesystem (a 64 KB tmpfs; root).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from edgekit.runtime.incidents import IncidentLog

ROOT = Path(__file__).resolve().parents[2]
FLOOD = textwrap.dedent("""
    import sys
    from edgekit.runtime.incidents import IncidentLog
    path, name, n, max_bytes, backups = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    log = IncidentLog(path, max_bytes=max_bytes, backups=backups)
    for i in range(n):
        log.add("ood", f"{name} {i}", "allow", "ab12", samples=[0])
    log.close()
""")


def on_disk(path: Path, backups: int) -> list[str]:
    """The reasons of the records in the file and its backups; every line must be a whole record."""
    files = [path] + [path.with_name(f"{path.name}.{i}") for i in range(1, backups + 1)]
    return [json.loads(line)["reason"] for f in files if f.exists() for line in f.read_text().splitlines()]


def counted(path: Path) -> int:
    """The drops a later reader finds next to the file (none when there is no count)."""
    counter = Path(f"{path}.dropped")
    return json.loads(counter.read_text())["dropped_records"] if counter.exists() else 0


def flood(path: Path, n: int, max_bytes: int, backups: int) -> list[str]:
    """Two processes and two logs in this process write n records each into one file at once."""
    procs = [subprocess.Popen([sys.executable, "-c", FLOOD, str(path), f"p{k}", str(n), str(max_bytes), str(backups)],
                              cwd=ROOT) for k in range(2)]
    logs = [IncidentLog(path, max_bytes=max_bytes, backups=backups) for _ in range(2)]

    def write(k: int) -> None:
        for i in range(n):
            logs[k].add("ood", f"t{k} {i}", "allow", "ab12", samples=[0])

    threads = [threading.Thread(target=write, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        log.close()
    assert [p.wait() for p in procs] == [0, 0]
    return [f"{w} {i}" for w in ("p0", "p1", "t0", "t1") for i in range(n)]


def test_four_writers_of_one_rotated_file_keep_or_count_every_record(tmp_path):
    path, backups = tmp_path / "incidents.jsonl", 2
    sent = flood(path, 5_000, max_bytes=20_000, backups=backups)  # about 100 records a file: many rotations
    kept = on_disk(path, backups)
    assert len(kept) == len(set(kept)) and set(kept) <= set(sent)  # no record twice, none made up
    assert len(kept) + counted(path) == len(sent) == 20_000
    assert not path.with_name(f"{path.name}.{backups + 1}").exists()


@pytest.fixture()
def small_disk(tmp_path):
    """A real 64 KB filesystem (tmpfs), unmounted at the end."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"mount tmpfs failed (this test needs root): {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def fill(folder: Path) -> Path:
    """Write a ballast file until the filesystem refuses another byte."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 512):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return ballast


def test_a_full_disk_is_counted_and_the_log_writes_again_once_there_is_room(small_disk):
    path = small_disk / "incidents.jsonl"
    log = IncidentLog(path, max_bytes=1_000_000, backups=1)
    log.add("ood", "before 0", "allow", "ab12")
    ballast = fill(small_disk)
    for i in range(100):
        log.add("ood", f"full {i}", "allow", "ab12", samples=[0])
    ballast.unlink()
    for i in range(100):
        log.add("ood", f"after {i}", "allow", "ab12", samples=[0])
    log.close()
    kept = on_disk(path, 1)  # whole lines only: a line the disk cut short was cut off again
    assert kept[-100:] == [f"after {i}" for i in range(100)]
    assert len(kept) + counted(path) == 201 and log.status()["dropped_records"] == counted(path) > 0
