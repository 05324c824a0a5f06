"""A fleet on this machine for the ring-deploy tests: five devices, each a real store with its own app.

Four devices are reached over the real sshd on 127.0.0.1 (tests/profile/sshd.py), each with its own
store folder; one is host "local". Each runs tests/fleet/device_app.py in a background process: it
serves its store (edgekit.store.serve) and feeds real digits, so canaries are judged on live calls
by the devices themselves. Every store trusts one EC key: the models rolled out are signed, or are
a signed release bundle.

Rings: canary = pi-1 + gw (local), early = pi-2, all = pi-3 and pi-4 (pi-4 has no ring of its own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("EDGEKIT_CACHE_DIR", tempfile.mkdtemp(prefix="edgekit-test-cache-"))

HERE = Path(__file__).resolve().parent
WORKTREE = HERE.parents[1]
APP_INTERVAL_S = 0.005  # about 100-200 calls a second per device: a 60-call canary ends in well under a second
RINGS = {"pi-1": "canary", "gw": "canary", "pi-2": "early", "pi-3": "all", "pi-4": None}


@dataclass
class Fleet:
    inventory: Path
    stores: dict[str, Path]
    apps: dict[str, subprocess.Popen]
    logs: dict[str, Path]
    folder: Path
    pub: Path
    key: Path

    def served(self, name: str) -> str | None:
        """What the device's app answered its last calls with (its own report, not the index)."""
        path = self.stores[name].parent / f"{self.stores[name].name}.app-served.json"
        return json.loads(path.read_text())["sha256"] if path.is_file() else None

    def signed_copy(self, src: Path, folder: Path, name: str) -> Path:
        """A copy of ``src`` signed with the key every store trusts."""
        return signed_copy(src, folder, name, self.key)

    def check_apps(self) -> None:
        for name, proc in self.apps.items():
            assert proc.poll() is None, f"the app of {name} died: {self.logs[name].read_text()[-2000:]}"


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


def _inventory(path: Path, server, python: Path, stores: dict[str, Path]) -> None:
    opts = ", ".join(json.dumps(o) for o in server.ssh_options)
    lines = ["[defaults]", f'user = "{server.host.split("@")[0]}"', f"port = {server.port}",
             f'key = "{server.key}"', f'python = "{python}"', f"ssh_options = [{opts}]", ""]
    for name, ring in RINGS.items():
        lines += ["[[device]]", f'name = "{name}"', f'host = "{"local" if name == "gw" else "127.0.0.1"}"',
                  f'store = "{stores[name]}"'] + ([f'ring = "{ring}"'] if ring else []) + [""]
    path.write_text("\n".join(lines))


def _wait_serving(fleet: Fleet, sha: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        fleet.check_apps()
        if all(fleet.served(n) == sha for n in fleet.stores):
            return
        time.sleep(0.1)
    raise AssertionError(f"the apps did not start serving: { {n: fleet.served(n) for n in fleet.stores} }")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, ssh_server, digits, digits_models, keys):
    """Five stores with the signed fp32 digits model active, each served by its running app."""
    from edgekit.store import ModelStore

    d = tmp_path_factory.mktemp("fleet")
    key, pub = keys["ours"]
    python = d / "device-python"  # the device's python: this venv, with this checkout on its path
    python.write_text(f"#!/bin/sh\nPYTHONPATH={WORKTREE} exec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    data = d / "digits.npz"
    np.savez(data, x=digits.x_test)
    v1 = signed_copy(digits_models("fp32"), d / "models", "v1", key)
    stores = {name: d / "devices" / name / "store" for name in RINGS}
    for store in stores.values():
        st = ModelStore(store, create=True)
        st.trust(pub)
        st.deploy(v1)
    inv = d / "fleet.toml"
    _inventory(inv, ssh_server, python, stores)
    env = dict(os.environ, PYTHONPATH=str(WORKTREE))
    apps, logs = {}, {}
    for name, store in stores.items():
        logs[name] = store.parent / "app.log"
        with open(logs[name], "wb") as log:
            apps[name] = subprocess.Popen([sys.executable, str(HERE / "device_app.py"), str(store), str(data),
                                           str(APP_INTERVAL_S)], stdout=log, stderr=subprocess.STDOUT, env=env)
    fl = Fleet(inv, stores, apps, logs, d, pub, key)
    try:
        from edgekit.fsutil import sha256_file

        _wait_serving(fl, sha256_file(v1))
        yield fl
    finally:
        for proc in apps.values():
            proc.terminate()
        for proc in apps.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
