"""Dispatch a profile to where it runs (here, SSH hosts, an adb phone), then publish and enforce budgets.

Example:
    >>> out = run("m.tflite", threads="1,2")                                   # doctest: +SKIP
    >>> out = run("m.tflite", hosts=["pi@pi4", "pi@pi5"], ssh={"key": "~/.ssh/id_ed25519"})   # doctest: +SKIP
    >>> [d["device"]["name"] for d in out.docs], [f.host for f in out.failures]               # doctest: +SKIP
    (['pi@pi4'], ['pi@pi5'])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckFailed, UsageError
from . import budgets, report, schema
from .processes import ProgressFn, interruptible
from .profiler import output_path, profile_model


@dataclass
class Outcome:
    """The result documents, and the SSH hosts that failed (only when several were asked)."""

    docs: list[dict[str, Any]]
    failures: list[Any] = field(default_factory=list)  # remote_ssh.HostFailure


def run(model: str | Path, *, runs: int = 200, warmup: int = 20, threads: Any = None, input: Any = None,
        backend: str | None = None, hosts: list[str] | None = None, ssh: dict[str, Any] | None = None,
        adb: str | None = None, benchmark_binary: str | Path | None = None, per_op: bool = False,
        on_progress: ProgressFn | None = None, timeout_s: float | None = None, load: dict | None = None) -> Outcome:
    """One result document per SSH host that worked, else one for the phone or this machine.
    ``load``: an external delegate and a signature (profiler.check_load); not with ``adb``.

    Ctrl-C kills every process started (here and on the devices) and raises Interrupted (exit 130)."""
    common = dict(runs=runs, warmup=warmup, threads=threads, on_progress=on_progress, timeout_s=timeout_s)
    with interruptible():
        if hosts:
            from .remote_ssh import SSHOptions, profile_hosts

            opts = SSHOptions(**{k: v for k, v in (ssh or {}).items() if v is not None})
            docs, failures = profile_hosts(model, list(hosts), opts, input=input, backend=backend, load=load,
                                           **common)
            return Outcome(docs, failures)
        if adb:
            from .remote_adb import profile_adb

            if load:
                raise UsageError("--delegate and --signature work here and over --host; with --adb pass "
                                 "benchmark_model's own flags")
            return Outcome([profile_adb(model, adb, benchmark_binary, per_op=per_op, **common)])
        return Outcome([profile_model(model, input=input, backend=backend, load=load, **common)])


def publish(docs: list[dict[str, Any]], *, target: str | None = None, max_latency_ms: float | None = None,
            max_memory_mb: float | None = None, json_out: str | Path | None = None,
            report_out: str | Path | None = None, several: bool | None = None) -> None:
    """Check budgets into each document, then write its JSON and HTML report.

    With several hosts (``several``, default: more than one document) each gets its own files,
    named by host (``out-pi_pi4.json``), also when only some of them worked."""
    several = len(docs) > 1 if several is None else several
    for doc in docs:
        budgets.check_budget(doc, target=target, max_latency_ms=max_latency_ms, max_memory_mb=max_memory_mb)
        label = doc["device"]["name"] if several else None
        if json_out:
            schema.save(doc, output_path(json_out, label))
        if report_out:
            report.write_report(doc, output_path(report_out, label))


def failure_lines(outcome: Outcome) -> list[str]:
    """One ``error: HOST: message`` line per failed host (messages already name the host)."""
    return [f"error: {f.error}" for f in outcome.failures]


def enforce(outcome: Outcome) -> None:
    """CheckFailed (exit 1) when a host failed or a document is over budget, naming the host when there are several."""
    if outcome.failures:
        names = ", ".join(f.host for f in outcome.failures)
        total = len(outcome.docs) + len(outcome.failures)
        kept = "; the results of the others were written" if outcome.docs else ""
        raise CheckFailed(f"{len(outcome.failures)} of {total} hosts failed ({names}){kept}")
    several = len(outcome.docs) > 1
    for doc in outcome.docs:
        budgets.enforce(doc["budget"], where=doc["device"]["name"] if several else "")
