"""What machine a profile ran on: CPU model, cores, governor, temperature, throttling.

stdlib only, because the same code runs on the device (it is bundled into the
child script piped over SSH). Every field is best effort: what the OS does not
expose is None, never a guess.

On a Raspberry Pi the temperature comes from /sys/class/thermal and the
throttling flags from ``vcgencmd get_throttled`` (decoded into words, because
nobody remembers that bit 2 means "currently throttled").

Example:
    >>> info = describe()
    >>> sorted(info)[:3]
    ['arch', 'cores', 'cpu_affinity']
"""

from __future__ import annotations

import glob
import os
import platform
import socket
import subprocess

# vcgencmd get_throttled bits (Raspberry Pi firmware documentation).
THROTTLE_BITS = {
    0: "under-voltage now",
    1: "ARM frequency capped now",
    2: "throttled now",
    3: "soft temperature limit now",
    16: "under-voltage has occurred",
    17: "ARM frequency capping has occurred",
    18: "throttling has occurred",
    19: "soft temperature limit has occurred",
}


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def cpu_model(root: str = "/") -> str | None:
    """'model name' on x86; on ARM boards the device-tree board name with 'Hardware'
    ('Raspberry Pi 4 Model B Rev 1.4 (BCM2835)'). ``root`` is for tests."""
    text = _read(os.path.join(root, "proc/cpuinfo")) or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip(), value.strip())
    board = _read(os.path.join(root, "sys/firmware/devicetree/base/model"))
    cpu = fields.get("model name") or fields.get("Hardware") or fields.get("Processor")
    if board:
        board = board.rstrip("\x00")
        return f"{board} ({cpu})" if cpu else board
    return cpu or fields.get("Model") or platform.processor() or None


def governor() -> str | None:
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def cpu_freq_mhz() -> dict[str, float] | None:
    base = "/sys/devices/system/cpu/cpu0/cpufreq/"
    out = {}
    for key, name in (("cur", "scaling_cur_freq"), ("min", "scaling_min_freq"), ("max", "scaling_max_freq")):
        v = _read(base + name)
        if v and v.isdigit():
            out[key] = int(v) / 1000.0
    return out or None


def temperatures_c(root: str = "/") -> dict[str, float] | None:
    """Every thermal zone's temperature; on a Pi 'cpu-thermal' is the SoC. ``root`` is for tests."""
    out = {}
    for zone in sorted(glob.glob(os.path.join(root, "sys/class/thermal/thermal_zone*"))):
        raw = _read(os.path.join(zone, "temp"))
        if raw is None or not raw.lstrip("-").isdigit():
            continue
        kind = _read(os.path.join(zone, "type")) or os.path.basename(zone)
        out[kind] = int(raw) / 1000.0
    return out or None


def decode_throttled(value: int) -> list[str]:
    """``0x50005`` -> ['under-voltage now', 'throttled now', ...]."""
    return [text for bit, text in THROTTLE_BITS.items() if value & (1 << bit)]


def throttling() -> dict | None:
    """Raspberry Pi firmware flags via vcgencmd; None where vcgencmd does not exist."""
    try:
        proc = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    _, _, raw = proc.stdout.strip().partition("=")
    try:
        value = int(raw, 16)
    except ValueError:
        return {"raw": proc.stdout.strip() or None, "flags": None}
    return {"raw": hex(value), "flags": decode_throttled(value)}


# pi-sim writes this file into each emulated device's root (scripts/pi-sim): inside the chroot it is the one
# signal that cannot be faked away by QEMU, which emulates uname and (since 8.1) /proc/cpuinfo for ARM guests.
EMULATION_MARKER = "etc/edgekit-pisim/emulated"
X86_VENDORS = ("GenuineIntel", "AuthenticAMD")


def emulation(root: str = "/", arch: str | None = None) -> str | None:
    """Why this machine's timings are an emulator's, or None: pi-sim's marker file, else an ARM userland
    whose /proc/cpuinfo names an x86 vendor (qemu-user passing the host's through).
    ``root`` and ``arch`` (default: uname -m) are for tests.

    Example:
        >>> emulation("/nonexistent") is None
        True
    """
    marker = _read(os.path.join(root, EMULATION_MARKER))
    if marker is not None:
        return marker.splitlines()[0][:200] if marker else "emulated device (pi-sim marker)"
    cpuinfo = _read(os.path.join(root, "proc/cpuinfo")) or ""
    arch = arch or platform.machine()
    if arch and not arch.startswith(("x86", "i686", "amd64")) and any(v in cpuinfo for v in X86_VENDORS):
        return f"{arch} userland on an x86 CPU (qemu-user)"
    return None


def describe() -> dict:
    """Everything above plus OS, Python and load: one dict for the profile's "machine" field."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "hostname": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_affinity": affinity,
        "governor": governor(),
        "cpu_freq_mhz": cpu_freq_mhz(),
        "temperature_c": temperatures_c(),
        "throttling": throttling(),
        "load_average": load,  # a busy machine explains noisy latencies
        "emulated": emulation(),  # an emulator's timings are never speed evidence
    }
