"""Device profiles: one TOML file each in profiles/, parsed into a frozen DeviceProfile.

A profile states the facts of a target (architecture, cores, RAM, the OS it assumes,
the interpreter package that works there, what it accelerates), what it prefers
(recipe, threads) and the budgets a release must meet on it (p95 latency, peak memory,
file size). Each shipped profile cites its vendor sources in a comment and in ``sources``.

``arch``, ``cores`` and ``memory_mb`` are required (``memory_mb`` may be fractional: a
microcontroller's 256 KB RAM is 0.25); everything else has a default.

Example:
    >>> p = load_profile("raspberry-pi-4")
    >>> p.preferred_recipe, p.threads, p.interpreter
    ('int8', 4, 'ai-edge-litert')
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import DeviceProfileError
from .tomldata import check_keys, list_names, read_named

ACCELERATORS = ("none", "edgetpu", "gpu", "tflm")
INTERPRETERS = ("ai-edge-litert", "tflite-runtime", "tflite-micro")
CONNECTIONS = ("ssh", "adb", "local", "usb", "serial")
REQUIRED = ("arch", "cores", "memory_mb")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    arch: str  # uname -m of the OS the profile assumes: aarch64, armv7l, x86_64, or the MCU core (cortex-m4)
    cores: int
    memory_mb: float  # RAM the device has (KB-class MCUs: a fraction)
    description: str = ""
    os: str = ""  # the OS the profile assumes, e.g. "Raspberry Pi OS (64-bit, bookworm)"
    os_bits: int = 64
    interpreter: str = "ai-edge-litert"  # the interpreter package that works there
    compat: str | None = None  # convert --compat value the interpreter needs (tflite-runtime-2.14)
    accelerator: str = "none"  # none | edgetpu | gpu | tflm
    op_set: str | None = None  # ops the accelerator or runtime supports: a data file in edgekit/targets/data
    int8_only: bool = False  # the accelerator runs only fully int8-quantized ops
    needs_static_shapes: bool = False
    max_size_kb: float | None = None  # budget on the .tflite file (flash on an MCU)
    arena_kb: float | None = None  # TFLite Micro tensor arena available for activations
    max_latency_ms: float | None = None  # budget on p95 latency per inference
    max_memory_mb: float | None = None  # budget on peak resident memory of the inference process
    preferred_recipe: str = "int8"
    threads: int = 1
    connection: str = "ssh"  # how edgekit profile reaches it: ssh | adb | local | usb | serial
    sources: tuple[str, ...] = ()  # the vendor documents the facts come from
    notes: str = ""
    audit: dict[str, Any] | None = None  # [audit] thresholds for edgekit audit (its AuditThresholds checks the keys)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A shipped profile by name (see ``list_profiles()``) or a profile file by path."""
    table, where = read_named("profiles", name_or_path, DeviceProfileError)
    check_keys(table, DeviceProfile, where, DeviceProfileError)
    missing = [k for k in REQUIRED if k not in table]
    if missing:
        raise DeviceProfileError(f"{where}: missing required field {missing[0]!r} "
                                 f"(a profile states at least {', '.join(REQUIRED)})")
    t = dict(table)
    t.setdefault("name", Path(str(name_or_path)).stem)
    for key in ("cores", "memory_mb", "threads", "max_latency_ms", "max_memory_mb", "max_size_kb", "arena_kb"):
        if key in t and t[key] <= 0:
            raise DeviceProfileError(f"{where}: {key} must be positive, got {t[key]}")
    for key, allowed in (("connection", CONNECTIONS), ("accelerator", ACCELERATORS), ("interpreter", INTERPRETERS)):
        if key in t and t[key] not in allowed:
            raise DeviceProfileError(f"{where}: {key} must be one of {', '.join(allowed)}, got {t[key]!r}")
    if t.get("os_bits", 64) not in (32, 64):
        raise DeviceProfileError(f"{where}: os_bits must be 32 or 64, got {t['os_bits']}")
    if "sources" in t:
        t["sources"] = tuple(t["sources"])
    return DeviceProfile(**t)


def profile_fields() -> list[str]:
    """Field names a profile file may use (for docs and error messages)."""
    return [f.name for f in dataclasses.fields(DeviceProfile)]


def list_profiles() -> list[str]:
    return list_names("profiles")
