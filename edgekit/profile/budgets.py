"""Budgets: p95 latency and peak memory against a device profile's limits, or explicit ones.

Every row (thread count) of a result must meet the budget: a sweep that passes
only at 4 threads still fails, because the app might run with 1. A figure the
device could not give counts as a failure (a CI gate must not pass on a
missing number); benchmark_model on adb reports no p95, so its max stands in
(max >= p95, so passing on it is safe).

Example:
    >>> doc = {"rows": [{"threads": 1, "latency_ms": {"p95": 12.0}, "memory": {"peak_mb": 80.0}}]}
    >>> check_budget(doc, max_latency_ms=10)["passed"]
    False
    >>> enforce(doc["budget"])
    Traceback (most recent call last):
    ...
    edgekit.errors.CheckFailed: over budget: 1 thread: p95 12 ms > 10 ms
"""

from __future__ import annotations

from typing import Any

from ..errors import CheckFailed, UsageError
from .render import fmt_ms, plural


# uname -m spellings of one architecture (Android reports its ABI, macOS says arm64).
_ARCH_ALIASES = {"arm64": "aarch64", "arm64-v8a": "aarch64", "amd64": "x86_64", "armeabi-v7a": "armv7l"}


def _arch(name: str | None) -> str | None:
    return _ARCH_ALIASES.get((name or "").lower(), (name or "").lower()) or None


def not_on_target(machine: dict[str, Any] | None, prof) -> str | None:
    """Why timings from ``machine`` are not evidence for device profile ``prof``, or None when they are.

    An emulator's timings never are; nor a machine of another architecture (an x86 workstation
    is not a Raspberry Pi, whatever its speed).

    Example:
        >>> from edgekit.devices import load_profile
        >>> not_on_target({"arch": "x86_64", "cpu_model": "Xeon"}, load_profile("raspberry-pi-4"))
        'measured on x86_64 (Xeon), not on raspberry-pi-4 (aarch64)'
    """
    m = machine or {}
    if m.get("emulated"):
        return f"emulated ({m['emulated']}): timings are not {prof.name}'s"
    if _arch(m.get("arch")) != _arch(prof.arch):
        cpu = f" ({m['cpu_model']})" if m.get("cpu_model") else ""
        return f"measured on {m.get('arch') or 'an unknown architecture'}{cpu}, not on {prof.name} ({prof.arch})"
    return None


def resolve(target: str | None = None, max_latency_ms: float | None = None,
            max_memory_mb: float | None = None) -> dict[str, Any] | None:
    """The limits to check: the target profile's, with explicit values overriding; None if none."""
    latency, memory, source = None, None, "options"
    if target:
        from ..devices import load_profile

        prof = load_profile(target)
        latency, memory, source = prof.max_latency_ms, prof.max_memory_mb, prof.name
    for name, value in (("--max-latency-ms", max_latency_ms), ("--max-memory-mb", max_memory_mb)):
        if value is not None and value <= 0:
            raise UsageError(f"{name} must be positive, got {value}")
    latency = max_latency_ms if max_latency_ms is not None else latency
    memory = max_memory_mb if max_memory_mb is not None else memory
    if latency is None and memory is None:
        return None
    return {"source": source, "max_latency_ms": latency, "max_memory_mb": memory}


def _latency_figure(lat: dict[str, Any]) -> tuple[float | None, str]:
    if lat.get("p95") is not None:
        return lat["p95"], "p95"
    return lat.get("max"), "max"  # no percentiles (benchmark_model): max is an upper bound of p95


def _check_row(row: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"threads": row["threads"], "failures": []}
    if limits["max_latency_ms"] is not None:
        value, metric = _latency_figure(row["latency_ms"])
        out.update(latency_metric=metric, latency_ms=value)
        if value is None:
            out["failures"].append(f"{metric} latency not measured")
        elif value > limits["max_latency_ms"]:
            out["failures"].append(f"{metric} {fmt_ms(value)} ms > {limits['max_latency_ms']:g} ms")
    if limits["max_memory_mb"] is not None:
        peak = row["memory"].get("peak_mb")
        out["peak_mb"] = peak
        if peak is None:
            out["failures"].append("peak memory not measured")
        elif peak > limits["max_memory_mb"]:
            out["failures"].append(f"peak {peak:.4g} MB > {limits['max_memory_mb']:g} MB")
    out["passed"] = not out["failures"]
    return out


def check_budget(doc: dict[str, Any], *, target: str | None = None, max_latency_ms: float | None = None,
                 max_memory_mb: float | None = None) -> dict[str, Any] | None:
    """Check every row; stores and returns ``doc["budget"]`` (None when no budget was asked for)."""
    limits = resolve(target, max_latency_ms, max_memory_mb)
    if limits is None:
        return None
    rows = [_check_row(r, limits) for r in doc["rows"]]
    doc["budget"] = {**limits, "rows": rows, "passed": all(r["passed"] for r in rows), "not_measured": None}
    if target:
        from ..devices import load_profile

        reason = not_on_target(doc.get("machine"), load_profile(target))
        if reason:  # the rows stay, as figures from this machine; the verdict is neither PASS nor FAIL
            doc["budget"].update(passed=None, not_measured=reason)
    return doc["budget"]


def enforce(budget: dict[str, Any] | None, where: str = "") -> None:
    """Raise CheckFailed (exit code 1) naming every failure, if the budget did not pass.

    A budget not measured on its target neither passes nor fails: nothing to enforce."""
    if not budget or budget["passed"] is not False:
        return
    parts = [f"{plural(r['threads'], 'thread')}: {', '.join(r['failures'])}"
             for r in budget["rows"] if not r["passed"]]
    src = "" if budget["source"] == "options" else f" of {budget['source']}"
    raise CheckFailed(f"{where + ': ' if where else ''}over budget{src}: {'; '.join(parts)}")
