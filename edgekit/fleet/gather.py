"""Ask every device of an inventory the same store question, in parallel, with a timeout each.

One ssh call per device runs ``python -m edgekit.store ARGS --json`` there (edgekit.store.remote);
a device whose host is "local" is answered in this process. A device that fails (unreachable,
timeout, no edgekit, no store) is a named failure; the others' answers are kept.

Example:
    >>> results = ask_all(inv, lambda dev: ["fleet", "--store", dev.store], timeout_s=20)   # doctest: +SKIP
    >>> [(r.device.name, r.ok) for r in results]                                         # doctest: +SKIP
    [('pi-1', True), ('pi-2', False)]
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import EdgekitError, UsageError
from .inventory import Device, Inventory

MAX_PARALLEL = 32  # ssh processes at once (each is a small process here; the devices do the work)
DEFAULT_TIMEOUT_S = 30.0


@dataclass
class Answer:
    """One device's answer (``doc``) or its one-line error, and how long it took."""

    device: Device
    doc: dict[str, Any] | None
    error: str | None
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return self.error is None


def check_timeout(timeout_s: float) -> float:
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
        raise UsageError(f"--timeout must be a positive number of seconds, got {timeout_s!r}")
    return float(timeout_s)


def ask(device: Device, args: list[str], timeout_s: float,
        local: Callable[[Device], dict[str, Any]] | None = None) -> Answer:
    """Run the store command ``args`` for one device; never raises for the device's own failures."""
    t0 = time.monotonic()
    try:
        if device.local:
            if local is None:
                raise UsageError("this command needs SSH")
            doc = local(device)
        else:
            from ..store.remote import run_remote

            opts = device.ssh()
            opts.connect_timeout = max(1, min(opts.connect_timeout, math.ceil(timeout_s)))
            doc = run_remote(device.target, opts, args + ["--json"], timeout_s=timeout_s)
        return Answer(device, doc, None, round(time.monotonic() - t0, 3))
    except EdgekitError as err:
        msg = str(err)
        prefix = f"{device.target}: "
        return Answer(device, None, msg[len(prefix):] if msg.startswith(prefix) else msg,
                      round(time.monotonic() - t0, 3))
    except OSError as err:  # a local store that cannot be read
        return Answer(device, None, f"{err.strerror or err}", round(time.monotonic() - t0, 3))


def ask_all(inv: Inventory, args_for: Callable[[Device], list[str]], *, timeout_s: float = DEFAULT_TIMEOUT_S,
            local: Callable[[Device], dict[str, Any]] | None = None,
            on_done: Callable[[Answer], None] | None = None) -> list[Answer]:
    """Every device's answer, in inventory order; ``on_done`` sees each as it arrives (progress)."""
    timeout_s = check_timeout(timeout_s)
    devices = list(inv.devices)
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_PARALLEL, len(devices)))) as pool:
        futures = [pool.submit(ask, d, args_for(d), timeout_s, local) for d in devices]
        for fut in as_completed(futures):
            if on_done is not None:
                on_done(fut.result())
    return [f.result() for f in futures]


def local_store(device: Device) -> Path:
    """The store folder of a "local" device (``~`` is this user's home)."""
    return Path(device.store).expanduser()
