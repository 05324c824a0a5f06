"""A fleet inventory: a TOML file of devices, validated with one-line errors.

::

    [defaults]                  # merged into every device (a device's own keys win)
    user = "pi"
    key = "~/.ssh/fleet"
    store = "/var/lib/app/models"
    python = "/opt/edgekit/bin/python"

    [[device]]
    name = "pi-lab-1"
    host = "10.0.0.11"
    ring = "canary"
    tags = ["lab", "pi4"]

    [[device]]
    name = "gateway"
    host = "local"              # a store on this machine: read directly, no SSH

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "fleet.toml"
    >>> _ = p.write_text('[[device]]\\nname = "a"\\nhost = "10.0.0.1"\\nring = "canary"\\n')
    >>> inv = load_inventory(p)
    >>> inv.devices[0].target, inv.rings()
    ('10.0.0.1', ['canary'])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..tomldata import tomllib

LOCAL = "local"  # the host of a device whose store is on this machine


@dataclass(frozen=True)
class Device:
    """One device: how to reach it and where its store lives."""

    name: str
    host: str
    port: int = 22
    user: str | None = None
    key: str | None = None
    store: str = "~/edgekit-store"
    python: str = "python3"
    tags: tuple[str, ...] = ()
    ring: str | None = None
    ssh_options: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        """What ssh is given: ``user@host`` or ``host``."""
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def local(self) -> bool:
        """True for a store on this machine (host "local"): read directly, without SSH."""
        return self.host == LOCAL

    def ssh(self):
        """The device's edgekit.profile.remote_ssh.SSHOptions."""
        from ..profile.remote_ssh import SSHOptions

        key = str(Path(self.key).expanduser()) if self.key else None
        return SSHOptions(key=key, port=self.port, options=list(self.ssh_options), python=self.python)


@dataclass(frozen=True)
class Inventory:
    """The devices of one inventory file, in file order."""

    path: Path
    devices: tuple[Device, ...]

    def ring(self, name: str) -> list[Device]:
        return [d for d in self.devices if d.ring == name]

    def rings(self) -> list[str]:
        """Ring names in the order they first appear in the file."""
        return list(dict.fromkeys(d.ring for d in self.devices if d.ring is not None))

    def tags(self) -> list[str]:
        return list(dict.fromkeys(t for d in self.devices for t in d.tags))

    def device(self, name: str) -> Device:
        for d in self.devices:
            if d.name == name:
                return d
        raise UsageError(f"{self.path}: no device named {name!r}; devices: {', '.join(d.name for d in self.devices)}")


_FIELDS = {f.name: f for f in dataclasses.fields(Device)}
_STR = ("name", "host", "user", "key", "store", "python", "ring")
_LISTS = ("tags", "ssh_options")


def _device(table: Any, defaults: dict[str, Any], where: str) -> Device:
    if not isinstance(table, dict):
        raise UsageError(f"{where}: must be a table ([[device]]), got {table!r}")
    label = f"{where} ({table['name']})" if isinstance(table.get("name"), str) else where
    merged = dict(defaults, **table)
    for key in merged:
        if key not in _FIELDS:
            raise UsageError(f"{label}: unknown key {key!r}; allowed: {', '.join(sorted(_FIELDS))}")
    for key in ("name", "host"):
        if key not in merged or merged[key] in ("", None):
            raise UsageError(f"{label}: missing {key!r}")
    for key in _STR:
        if key in merged and not isinstance(merged[key], str):
            raise UsageError(f"{label}: {key} must be a string, got {merged[key]!r}")
    for key in _LISTS:
        if key in merged:
            val = merged[key]
            if not isinstance(val, list) or not all(isinstance(v, str) and v for v in val):
                raise UsageError(f"{label}: {key} must be a list of strings, got {val!r}")
            merged[key] = tuple(val)
    port = merged.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise UsageError(f"{label}: port must be an integer from 1 to 65535, got {port!r}")
    if merged["host"].startswith("-") or any(c.isspace() for c in merged["host"]):
        raise UsageError(f"{label}: host {merged['host']!r} cannot start with '-' or hold spaces")
    if merged.get("user", "") and (merged["user"].startswith("-") or "@" in merged["user"]):
        raise UsageError(f"{label}: user {merged['user']!r} cannot start with '-' or hold '@'")
    return Device(**merged)


def parse_inventory(doc: dict[str, Any], path: Path) -> Inventory:
    """An Inventory from a parsed TOML document (``path`` names it in errors)."""
    extra = sorted(set(doc) - {"device", "defaults"})
    if extra:
        raise UsageError(f"{path}: unknown table {extra[0]!r}; an inventory has [defaults] and [[device]]")
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise UsageError(f"{path}: [defaults] must be a table")
    if "name" in defaults:
        raise UsageError(f"{path}: [defaults]: 'name' cannot have a default (each device names itself)")
    tables = doc.get("device")
    if not isinstance(tables, list) or not tables:
        raise UsageError(f"{path}: no devices; add [[device]] tables with name and host")
    devices: list[Device] = []
    seen: dict[str, int] = {}
    for i, table in enumerate(tables, 1):
        dev = _device(table, defaults, f"{path}: device {i}")
        if dev.name in seen:
            raise UsageError(f"{path}: device {i} ({dev.name}): duplicate name (also device {seen[dev.name]})")
        seen[dev.name] = i
        devices.append(dev)
    return Inventory(path, tuple(devices))


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory file; any problem is a UsageError of one line naming file, device, field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: inventory file not found") from None
    except OSError as err:
        raise UsageError(f"{path}: cannot read the inventory: {err.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: not valid TOML: {err}") from None
    return parse_inventory(doc, path)
