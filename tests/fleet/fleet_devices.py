"""Helpers of the fleet tests (a module of its own name: every test folder has a conftest.py): digits fed to a
served store, a drifted camera's digits, a device's python and its inventory entry, a closed port.

Example:
    >>> float(shifted(np.ones((1, 8, 8, 1), np.float32)).max())
    1.0
"""

from __future__ import annotations

import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WORKTREE = Path(__file__).resolve().parents[2]


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
