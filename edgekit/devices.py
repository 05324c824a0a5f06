"""Device profiles: one TOML file each in profiles/, parsed into a frozen DeviceProfile.

A profile names the target, what it prefers (recipe, threads) and the budgets a
release must meet on it (p95 latency, peak memory).

Example:
    >>> p = load_profile("raspberry-pi-4")
    >>> p.preferred_recipe, p.threads
    ('int8', 4)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import DeviceProfileError
from .tomldata import check_keys, list_names, read_named



@dataclass(frozen=True)
class DeviceProfile:
    name: str
    description: str = ""
    arch: str = "aarch64"
    cores: int = 4
    memory_mb: int = 4096
    preferred_recipe: str = "int8"
    threads: int = 1
    interpreter: str = "ai-edge-litert"
    max_latency_ms: float | None = None  # budget on p95 latency per inference
    max_memory_mb: float | None = None  # budget on peak resident memory of the inference process
    connection: str = "ssh"  # ssh | adb | local
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A shipped profile by name (see ``list_profiles()``) or a profile file by path."""
    table, where = read_named("profiles", name_or_path, DeviceProfileError)
    check_keys(table, DeviceProfile, where, DeviceProfileError)
    t = dict(table)
    t.setdefault("name", Path(str(name_or_path)).stem)
    for key in ("cores", "memory_mb", "threads", "max_latency_ms", "max_memory_mb"):
        if key in t and t[key] <= 0:
            raise DeviceProfileError(f"{where}: {key} must be positive, got {t[key]}")
    if t.get("connection", "ssh") not in ("ssh", "adb", "local"):
        raise DeviceProfileError(f"{where}: connection must be ssh, adb or local, got {t['connection']!r}")
    return DeviceProfile(**t)


def list_profiles() -> list[str]:
    return list_names("profiles")
