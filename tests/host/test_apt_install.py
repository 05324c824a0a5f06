"""scripts/apt-install: several callers at once while another apt holds apt's locks all succeed.

A brand-new machine ran three `scripts/pi-sim start` at once; each ran apt-get and two died on
"Could not get lock /var/lib/apt/lists/lock". Here a real apt lock is held (the fcntl lock apt itself
takes on /var/lib/apt/lists/lock and /var/lib/dpkg/lock-frontend) while three callers install a real,
tiny Debian package; every caller must wait and succeed. The package is removed again afterwards.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "hello"  # 50 KB, nothing depends on it

pytestmark = [pytest.mark.slow, pytest.mark.full_env]


def installed(pkg: str) -> bool:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return "install ok installed" in res.stdout


@pytest.fixture()
def removed_after():
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail("this test needs root and apt-get, as ./dev test does (it installs sshd and debootstrap)")
    if installed(PACKAGE):
        subprocess.run(["apt-get", "remove", "-y", "-qq", PACKAGE], check=True, capture_output=True)
    yield
    subprocess.run(["apt-get", "remove", "-y", "-qq", PACKAGE], capture_output=True)


def test_parallel_callers_wait_for_apts_locks_and_all_succeed(removed_after):
    held = []
    for lock in ("/var/lib/apt/lists/lock", "/var/lib/dpkg/lock-frontend"):
        fh = open(lock, "w")
        fcntl.lockf(fh, fcntl.LOCK_EX)  # what apt-get holds while it runs
        held.append(fh)
    procs = [subprocess.Popen([str(REPO / "scripts" / "apt-install"), PACKAGE], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    time.sleep(8)  # long enough that a caller without waiting has failed by now
    early = [p.returncode for p in procs if p.poll() is not None]
    for fh in held:
        fh.close()
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert early == [], f"a caller ended while apt's lock was held: {early}\n" + "\n".join(outs)
    assert [p.returncode for p in procs] == [0, 0, 0], "\n---\n".join(outs)
    assert installed(PACKAGE)
    assert any("waiting for another apt" in out for out in outs), outs


def test_nothing_to_do_is_quick_and_needs_no_apt(removed_after):
    """Already installed: no apt-get at all (so a warm machine never waits for a lock)."""
    subprocess.run([str(REPO / "scripts" / "apt-install"), PACKAGE], check=True, capture_output=True)
    with open("/var/lib/dpkg/lock-frontend", "w") as fh:
        fcntl.lockf(fh, fcntl.LOCK_EX)
        t0 = time.monotonic()
        res = subprocess.run([str(REPO / "scripts" / "apt-install"), PACKAGE], capture_output=True, text=True,
                             timeout=60)
    assert res.returncode == 0 and time.monotonic() - t0 < 5, res.stderr
