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
    budget     null, or {source, max_latency_ms, max_memory_mb, rows: [...], passed}
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
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fsutil import atomic_write_text, read_json

SCHEMA = "edgekit.profile/1"

METHOD = {
    "latency": "wall time of interpreter.invoke() alone (time.perf_counter_ns) in a fresh child process, "
    "after the warm-up runs; inputs are set outside the timed region",
    "memory": "RSS of the child process sampled by a thread (/proc/self/statm) every sample_interval_ms until "
    "the timed runs and every runs_sample_interval_ms during them (a denser sampler slows a busy core), "
    "ru_maxrss from getrusage (the kernel's high-water mark), USS/PSS from /proc/self/smaps_rollup or psutil; "
    "peak_mb = max(sampled peak, ru_maxrss) and includes Python, numpy and the interpreter package "
    "(see baseline_rss_mb)",
    "percentiles": "linear interpolation between order statistics (numpy.percentile)",
}


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
        missing = [k for k in ("threads", "latency_ms", "memory") if k not in row]
        if missing:
            raise UsageError(f"{where}: rows[{i}] lacks {', '.join(missing)}")
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
