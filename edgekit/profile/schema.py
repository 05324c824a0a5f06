"""The profile result document, schema "edgekit.profile/1" (documented field by field in docs/profile.md).

One JSON object per model and device::

    schema, created, edgekit        version stamp
    model      {path, file, size_bytes, size_mb, sha256, recipe}
    device     {kind: local|ssh|adb, name}
    machine    CPU model, cores, governor, temperature, throttling, load (what the OS exposes)
    settings   {runs, warmup, threads: [..], input}
    rows       one per thread count: threads, interpreter, timing (load/init/first ms),
               latency_ms {count, min, mean, std, p50, p90, p95, p99, max, throughput_per_s},
               memory {start/baseline/after_load RSS, peak sampled, ru_maxrss, USS, PSS, peak_mb},
               samples_ms, block_medians_ms, per_op {available, reason, ops}
    budget     null, or {source, max_latency_ms, max_memory_mb, rows: [...], passed, not_measured}
               (passed null: judged against a target these numbers are not from, not_measured says why)
    method     how each number was measured, in words

Values the device cannot give are null (benchmark_model on adb reports no
percentiles, so p50..p99 are null there and ``samples_ms`` is empty).

Example:
    >>> doc = {"schema": SCHEMA, "model": {}, "device": {}, "rows": [{"threads": 1, "latency_ms": {}, "memory": {}}]}
    >>> validate(doc, "a.json")["schema"]
    'edgekit.profile/1'
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable

from ..errors import RemoteError, UsageError
from ..fsutil import atomic_write_text, read_json

SCHEMA = "edgekit.profile/1"

METHOD = {
    "latency": "wall time of the engine session's invoke alone (time.perf_counter_ns) in a fresh child process, "
    "after the warm-up runs; inputs are set outside the timed region",
    "memory": "RSS of the child process sampled by a thread (/proc/self/statm) every sample_interval_ms until "
    "the timed runs and every runs_sample_interval_ms during them (a denser sampler slows a busy core), "
    "ru_maxrss from getrusage (the kernel's high-water mark), USS/PSS from /proc/self/smaps_rollup or psutil; "
    "peak_mb = max(sampled peak, ru_maxrss) and includes Python, numpy and the interpreter package "
    "(see baseline_rss_mb)",
    "percentiles": "linear interpolation between order statistics (numpy.percentile)",
}


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


# Field kinds: a check and the words an error uses. A device is not trusted: its strings end up in HTML
# and its numbers in arithmetic and format specs, so each field the reports read has one type.
KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "threads": (lambda v: _count(v) and v >= 1, "a whole number >= 1"),
    "count?": (lambda v: v is None or _count(v), "a whole number or null"),
    "num?": (lambda v: v is None or _num(v), "a finite number or null"),
    "str?": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "bool?": (lambda v: v is None or isinstance(v, bool), "true, false or null"),
    "nums": (lambda v: isinstance(v, list) and all(_num(x) for x in v), "a list of finite numbers"),
    "nums?": (lambda v: v is None or (isinstance(v, list) and all(_num(x) for x in v)),
              "a list of finite numbers or null"),
    "strs?": (lambda v: v is None or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
              "a list of strings or null"),
}
# Nested specs: a dict spec is an object (or null) with those keys; "*" applies to every other key.
MACHINE = {"hostname": "str?", "os": "str?", "arch": "str?", "python": "str?", "cpu_model": "str?",
           "cores": "count?", "cpu_affinity": "count?", "governor": "str?", "cpu_freq_mhz": {"*": "num?"},
           "temperature_c": {"*": "num?"}, "throttling": {"raw": "str?", "flags": "strs?"},
           "load_average": "nums?", "emulated": "str?"}
MODEL = {"file": "str?", "size_bytes": "count?", "size_mb": "num?", "sha256": "str?"}
OP = {"type": "str?", "name": "str?", "*": "num?"}
ROW = {"threads": "threads",
       "interpreter": {"package": "str?", "version": "str?", "binary": "str?", "default_delegates": "bool?"},
       "inputs": [{"name": "str?", "shape": "nums", "dtype": "str?", "samples": "count?"}],
       "timing": {"samples_ms": "nums", "*": "num?"},
       "latency_ms": {"*": "num?"},
       "throughput_per_s": "num?",
       "memory": {"uss_pss_source": "str?", "source": "str?", "*": "num?"},
       "samples_ms": "nums", "block_medians_ms": "nums",
       "machine": MACHINE, "machine_after": MACHINE,
       "per_op": {"available": "bool?", "reason": "str?", "source": "str?", "ops": [OP]}}


def check_fields(value: Any, spec: Any, where: str, field: str, error: type = UsageError) -> None:
    """Raise ``error`` naming the first field of ``value`` that does not match ``spec`` (KINDS, dict or [item]).

    Example:
        >>> check_fields({"threads": "<script>"}, ROW, "pi", "result")
        Traceback (most recent call last):
        edgekit.errors.UsageError: pi: result.threads is '<script>', expected a whole number >= 1
    """
    if isinstance(spec, str):
        ok, what = KINDS[spec]
        if not ok(value):
            raise error(f"{where}: {field} is {_short(value)}, expected {what}")
    elif value is None:
        return
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise error(f"{where}: {field} is {_short(value)}, expected a list")
        for i, item in enumerate(value):
            check_fields(item, spec[0], where, f"{field}[{i}]", error)
    else:
        if not isinstance(value, dict):
            raise error(f"{where}: {field} is {_short(value)}, expected an object")
        for key, item in value.items():
            sub = spec.get(key, spec.get("*"))
            if sub is not None:
                check_fields(item, sub, where, f"{field}.{key}", error)


def _short(value: Any) -> str:
    """A bounded repr for an error line (a device may send megabytes)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_device_result(raw: Any, where: str) -> dict[str, Any]:
    """The child's result as the device sent it, each field checked (one-line RemoteError otherwise).

    Example:
        >>> check_device_result({"threads": 1, "timing": {"samples_ms": [0.1]}, "memory": {}}, "pi")["threads"]
        1
    """
    if not isinstance(raw, dict):
        raise RemoteError(f"{where}: the device's result is not a JSON object")
    err = raw.get("error")
    if err is not None:
        check_fields(err, {"kind": "str?", "message": "str?"}, where, "result.error", RemoteError)
        if not isinstance(err, dict) or not err.get("kind"):
            raise RemoteError(f"{where}: the device reported an error without a kind")
        return raw
    check_fields(raw, ROW, where, "result", RemoteError)
    check_fields(raw.get("threads"), "threads", where, "result.threads", RemoteError)
    for key in ("timing", "memory"):
        if not isinstance(raw.get(key), dict):
            raise RemoteError(f"{where}: the device's result lacks {key}")
    if not raw["timing"].get("samples_ms"):
        raise RemoteError(f"{where}: the device's result has no latency samples")
    return raw


def validate(doc: Any, where: str) -> dict[str, Any]:
    """Check the shape of a profile document; one-line UsageError naming the file when it is wrong."""
    if not isinstance(doc, dict) or doc.get("schema") is None:
        raise UsageError(f"{where}: not an edgekit profile result (no 'schema'); write one with edgekit profile --json")
    if doc["schema"] != SCHEMA:
        raise UsageError(f"{where}: schema {doc['schema']!r} is not {SCHEMA!r}; re-run edgekit profile")
    rows = doc.get("rows")
    if not isinstance(rows, list) or not rows:
        raise UsageError(f"{where}: a profile result needs at least one row")
    for i, row in enumerate(rows):
        missing = [k for k in ("threads", "latency_ms", "memory") if not isinstance(row, dict) or k not in row]
        if missing:
            raise UsageError(f"{where}: rows[{i}] lacks {', '.join(missing)}")
        check_fields(row, ROW, where, f"rows[{i}]")
    check_fields(doc.get("machine"), MACHINE, where, "machine")
    check_fields(doc.get("model"), MODEL, where, "model")
    check_fields(doc.get("settings"), {"runs": "count?", "warmup": "count?"}, where, "settings")
    return doc


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a result file."""
    p = Path(path)
    doc = read_json(p, UsageError, "profile result")
    return validate(doc, str(p))


def save(doc: dict[str, Any], path: str | Path) -> Path:
    """Write atomically (a crash leaves the old file, never half a file)."""
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    return Path(path)
