"""Fixtures for the fleet tests: real digits stores served by edgekit.store.serve, reached through the real sshd
on 127.0.0.1 (tests/profile/sshd.py), plus one "local" device and one unreachable (a closed port).

The devices' python is this venv's with this checkout on its path (a wrapper script), as in tests/store.
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

WORKTREE = Path(__file__).resolve().parents[2]


def _store_fixtures():
    """tests/store/conftest.py as a module of its own name: its `cli` runner and the real sshd fixture
    (which it shares from tests/profile)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "store" / "conftest.py"
    spec = importlib.util.spec_from_file_location("edgekit_tests_store_conftest_fleet", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_store = _store_fixtures()
ssh_server = _store.ssh_server  # a real OpenSSH server on 127.0.0.1 (tests/profile/sshd.py)
cli = _store.cli  # cli(*args) -> (exit code, stdout, stderr) of the real edgekit CLI in this process


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shifted(x: np.ndarray) -> np.ndarray:
    """Digits seen by a camera that drifted: brighter and lower contrast (a sensor's gain and offset moved)."""
    return (x * 0.4 + 0.6 * float(x.max())).astype(np.float32)


def feed(store: Path, xs: np.ndarray, *, batches: int = 3, pause_s: float = 0.12, **serve_kw) -> dict[str, int]:
    """Serve ``store`` and predict every sample of ``xs`` one by one, in ``batches`` with pauses so the health
    history gets several lines; returns the incident counts the served model recorded (in memory)."""
    from edgekit.store import serve

    with serve(store, health_every_s=0.05, **serve_kw) as m:
        for part in np.array_split(xs, batches):
            for x in part:
                m.predict(x[None])
            time.sleep(pause_s)
        counts = dict(m.model.incident_log.counts())
    return counts


def device_python(folder: Path) -> Path:
    py = folder / "device-python"
    py.write_text(f"#!/bin/sh\nPYTHONPATH={WORKTREE} exec {sys.executable} \"$@\"\n")
    py.chmod(0o755)
    return py


@dataclass
class Fleet:
    inventory: Path
    stores: dict[str, Path]
    recorded: dict[str, dict[str, int]] = field(default_factory=dict)  # device -> incident counts per kind


def ssh_device_toml(name: str, server, py: Path, store: Path, ring: str, tags: list[str], port: int | None = None):
    user, host = server.host.split("@")
    opts = ", ".join(f'"{o}"' for o in server.ssh_options)
    tag_list = ", ".join(f'"{t}"' for t in tags)
    return (f'[[device]]\nname = "{name}"\nhost = "{host}"\nuser = "{user}"\nport = {port or server.port}\n'
            f'key = "{server.key}"\npython = "{py}"\nstore = "{store}"\nring = "{ring}"\ntags = [{tag_list}]\n'
            f"ssh_options = [{opts}]\n")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, ssh_server, digits, digits_models) -> Fleet:
    """Five devices: three healthy (two over SSH, one local), one fed drifted digits (SSH), one unreachable."""
    from edgekit.store import ModelStore

    root = tmp_path_factory.mktemp("fleet")
    py = device_python(root)
    model = digits_models("fp32")
    names = ("pi-a", "pi-b", "gateway", "pi-drift")
    stores = {}
    fl = Fleet(root / "fleet.toml", stores)
    for name in names:
        stores[name] = root / f"store-{name}"
        ModelStore(stores[name], create=True).deploy(model)
    xs = digits.x_test[:150]
    for name in names:
        fl.recorded[name] = feed(stores[name], shifted(xs) if name == "pi-drift" else xs)
    parts = [ssh_device_toml("pi-a", ssh_server, py, stores["pi-a"], "canary", ["lab"]),
             ssh_device_toml("pi-b", ssh_server, py, stores["pi-b"], "early", ["lab"]),
             f'[[device]]\nname = "gateway"\nhost = "local"\nstore = "{stores["gateway"]}"\nring = "all"\n'
             'tags = ["site-2"]\n',
             ssh_device_toml("pi-drift", ssh_server, py, stores["pi-drift"], "early", ["site-2"]),
             ssh_device_toml("pi-down", ssh_server, py, root / "store-down", "all", ["site-2"], port=closed_port())]
    fl.inventory.write_text("\n".join(parts))
    return fl
