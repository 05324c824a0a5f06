"""A fleet on this machine: real stores, each served by its own app process, reached over a real sshd or locally.

Used by the ring-deploy tests (tests/fleet/test_rollout.py) and by bench/bench_fleet_rollout.py. Each device
runs tests/fleet/device_app.py in a background process: it serves its store (edgekit.store.serve)
and feeds real digits, so canaries are judged on live calls by the devices themselves. Every store
trusts one EC key: what is rolled out must be signed (or a signed release bundle).

Example:
    >>> fl = start(folder, server, v1, key, pub, x, {"pi-1": "canary", "gw": "canary"})   # doctest: +SKIP
    >>> fl.served("pi-1")[:12]                                                             # doctest: +SKIP
    '3f0c9a1b2d4e'
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
WORKTREE = HERE.parents[1]
APP_INTERVAL_S = 0.005  # about 100-200 calls a second per device: a 60-call canary ends in well under a second
LOCAL = "gw"  # the device named so uses host "local" (a store on this machine, no SSH)


@dataclass
class Fleet:
    inventory: Path
    stores: dict[str, Path]
    apps: dict[str, subprocess.Popen]
    logs: dict[str, Path]
    folder: Path
    key: Path

    def served(self, name: str) -> str | None:
        """What the device's app answered its last calls with (its own report, not the index)."""
        report = self.app_report(name)
        return report["sha256"] if report else None

    def app_report(self, name: str) -> dict | None:
        path = self.stores[name].parent / f"{self.stores[name].name}.app-served.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def signed_copy(self, src: Path, folder: Path, name: str) -> Path:
        """A copy of ``src`` signed with the key every store trusts."""
        return signed_copy(src, folder, name, self.key)

    def check_apps(self) -> None:
        for name, proc in self.apps.items():
            assert proc.poll() is None, f"the app of {name} died: {self.logs[name].read_text()[-2000:]}"

    def stop(self) -> None:
        for proc in self.apps.values():
            proc.terminate()
        for proc in self.apps.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def signed_copy(src: Path, folder: Path, name: str, key: Path) -> Path:
    """A copy of ``src`` (manifest beside it) signed with ``key``."""
    from edgekit.manifest import manifest_path_for
    from edgekit.signing import sign

    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / f"{name}.tflite"
    shutil.copyfile(src, dest)
    shutil.copyfile(manifest_path_for(src), manifest_path_for(dest))
    sign(dest, key)
    return dest


def _inventory(path: Path, server, python: Path, stores: dict[str, Path], rings: dict[str, str | None]) -> None:
    opts = ", ".join(json.dumps(o) for o in server.ssh_options)
    lines = ["[defaults]", f'user = "{server.host.split("@")[0]}"', f"port = {server.port}",
             f'key = "{server.key}"', f'python = "{python}"', f"ssh_options = [{opts}]", ""]
    for name, ring in rings.items():
        lines += ["[[device]]", f'name = "{name}"', f'host = "{"local" if name == LOCAL else "127.0.0.1"}"',
                  f'store = "{stores[name]}"'] + ([f'ring = "{ring}"'] if ring else []) + [""]
    path.write_text("\n".join(lines))


def start(folder: Path, server, v1: Path, key: Path, pub: Path, x: np.ndarray, rings: dict[str, str | None],
          interval_s: float = APP_INTERVAL_S, timeout_s: float = 120) -> Fleet:
    """Stores under ``folder`` trusting ``pub`` with ``v1`` (signed) active, their apps serving; the inventory
    names each device's ring (None: no ring of its own)."""
    from edgekit.fsutil import sha256_file
    from edgekit.store import ModelStore

    python = folder / "device-python"  # the device's python: this venv, with this checkout on its path
    python.write_text(f"#!/bin/sh\nPYTHONPATH={WORKTREE} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    data = folder / "digits.npz"
    np.savez(data, x=x)
    stores = {name: folder / "devices" / name / "store" for name in rings}
    for store in stores.values():
        st = ModelStore(store, create=True)
        st.trust(pub)
        st.deploy(v1)
    inv = folder / "fleet.toml"
    _inventory(inv, server, python, stores, rings)
    env = dict(os.environ, PYTHONPATH=str(WORKTREE))
    apps, logs = {}, {}
    for name, store in stores.items():
        logs[name] = store.parent / "app.log"
        with open(logs[name], "wb") as log:
            apps[name] = subprocess.Popen([sys.executable, str(HERE / "device_app.py"), str(store), str(data),
                                           str(interval_s)], stdout=log, stderr=subprocess.STDOUT, env=env)
    fleet = Fleet(inv, stores, apps, logs, folder, key)
    try:
        _wait_serving(fleet, sha256_file(v1), timeout_s)
    except BaseException:
        fleet.stop()
        raise
    return fleet


def _wait_serving(fleet: Fleet, sha: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fleet.check_apps()
        if all(fleet.served(n) == sha for n in fleet.stores):
            return
        time.sleep(0.1)
    raise AssertionError(f"the apps did not start serving: { {n: fleet.served(n) for n in fleet.stores} }")
