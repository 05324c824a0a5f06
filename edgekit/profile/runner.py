"""One entry point for the CLI and the demo: profile here, over SSH, or over adb.

Example:
    >>> docs = run("m.tflite", threads="1,2")                                   # doctest: +SKIP
    >>> docs = run("m.tflite", hosts=["pi@pi4", "pi@pi5"], ssh={"key": "~/.ssh/id_ed25519"})   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import budgets, report, schema
from .profiler import ProgressFn, output_path, profile_model


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


def publish(docs: list[dict[str, Any]], *, target: str | None = None, max_latency_ms: float | None = None,
            max_memory_mb: float | None = None, json_out: str | Path | None = None,
            report_out: str | Path | None = None) -> None:
    """Check budgets into each document, then write its JSON and HTML report (one file each per host)."""
    for doc in docs:
        budgets.check_budget(doc, target=target, max_latency_ms=max_latency_ms, max_memory_mb=max_memory_mb)
        label = doc["device"]["name"] if len(docs) > 1 else None
        if json_out:
            schema.save(doc, output_path(json_out, label))
        if report_out:
            report.write_report(doc, output_path(report_out, label))


def enforce(docs: list[dict[str, Any]]) -> None:
    """CheckFailed (exit 1) for the first document over budget, naming its device when there are several."""
    for doc in docs:
        budgets.enforce(doc["budget"], where=doc["device"]["name"] if len(docs) > 1 else "")
