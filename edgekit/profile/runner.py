"""One entry point for the CLI and the demo: profile here, over SSH, or over adb.

Example:
    >>> docs = run("m.tflite", threads="1,2")                                   # doctest: +SKIP
    >>> docs = run("m.tflite", hosts=["pi@pi4", "pi@pi5"], ssh={"key": "~/.ssh/id_ed25519"})   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .profiler import ProgressFn, profile_model


def run(model: str | Path, *, runs: int = 200, warmup: int = 20, threads: Any = None, input: str | None = None,
        backend: str | None = None, hosts: list[str] | None = None, ssh: dict[str, Any] | None = None,
        adb: str | None = None, benchmark_binary: str | Path | None = None, per_op: bool = False,
        on_progress: ProgressFn | None = None) -> list[dict[str, Any]]:
    """A list of result documents: one per SSH host, else one for the phone or this machine."""
    common = dict(runs=runs, warmup=warmup, threads=threads, on_progress=on_progress)
    if hosts:
        from .remote_ssh import SSHOptions, profile_hosts

        opts = SSHOptions(**{k: v for k, v in (ssh or {}).items() if v is not None})
        return profile_hosts(model, list(hosts), opts, input=input, backend=backend, **common)
    if adb:
        from .remote_adb import profile_adb

        return [profile_adb(model, adb, benchmark_binary, per_op=per_op, **common)]
    return [profile_model(model, input=input, backend=backend, **common)]
