"""The op tables check reads: DATA files in edgekit/targets/data, parsed into frozen OpTables.

- ``edgetpu.toml``, ``tflm.toml``: the ops an accelerator or runtime supports (from the vendors'
  documentation or source, cited in each file);
- ``ops-<package>-<version>.toml``: the builtin ops and max op versions an interpreter package
  resolves, derived from the real package by scripts/derive_op_tables.py.

Example:
    >>> t = interpreter_table("tflite-runtime", "tflite-runtime-2.14")
    >>> t.max_version["FULLY_CONNECTED"]
    10
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from ..errors import DeviceProfileError


@dataclass(frozen=True)
class OpTable:
    name: str
    title: str
    source: str
    ops: frozenset[str]  # builtin op names
    max_version: dict[str, int] = field(default_factory=dict)  # interpreter tables only
    custom_ops: frozenset[str] = frozenset()  # custom op codes with a kernel
    xnnpack_custom_ops: frozenset[str] = frozenset()  # custom ops only XNNPACK runs
    limits: dict[str, str] = field(default_factory=dict)  # op -> known limitation


def _data():
    return resources.files("edgekit.targets") / "data"


@functools.lru_cache(maxsize=None)
def load_table(name: str) -> OpTable:
    """``edgetpu``, ``tflm`` or ``ops-tflite-runtime-2.14``-style names (files in data/)."""
    entry = _data() / f"{name}.toml"
    if not entry.is_file():
        known = sorted(p.name[:-5] for p in _data().iterdir() if p.name.endswith(".toml"))
        raise DeviceProfileError(f"unknown op_set {name!r}; choose one of: {', '.join(known)}")
    d = tomllib.loads(entry.read_text(encoding="utf-8"))
    if "max_version" in d:  # an interpreter table
        custom = d.get("custom_ops", {})
        return OpTable(name=name, title=f"{d['package']} {d['version']}", source="scripts/derive_op_tables.py",
                       ops=frozenset(d["max_version"]), max_version=dict(d["max_version"]),
                       custom_ops=frozenset(custom.get("present", ())),
                       xnnpack_custom_ops=frozenset(custom.get("xnnpack", ())))
    return OpTable(name=name, title=d["title"], source=d["source"], ops=frozenset(d["ops"]),
                   custom_ops=frozenset(d.get("custom_ops", ())), limits=dict(d.get("limits", {})))


def interpreter_tables() -> list[OpTable]:
    """Every shipped interpreter table (ops-*.toml)."""
    return [load_table(p.name[:-5]) for p in sorted(_data().iterdir(), key=lambda p: p.name)
            if p.name.startswith("ops-") and p.name.endswith(".toml")]


def interpreter_table(interpreter: str, compat: str | None = None) -> OpTable | None:
    """The table of the interpreter a profile names (None for tflite-micro: its op_set says it).

    ``compat`` (say "tflite-runtime-2.14") picks that version's table; otherwise the newest
    table shipped for the package.
    """
    if interpreter == "tflite-micro":
        return None
    if compat and compat.startswith(interpreter):
        return load_table(f"ops-{compat}")
    names = sorted((p.name[:-5] for p in _data().iterdir()
                    if p.name.startswith(f"ops-{interpreter}-") and p.name.endswith(".toml")),
                   key=lambda n: [int(x) for x in n.rsplit("-", 1)[1].split(".") if x.isdigit()])
    if not names:
        raise DeviceProfileError(f"no op table for interpreter {interpreter!r}")
    return load_table(names[-1])
