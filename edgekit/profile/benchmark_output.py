"""Parse the text LiteRT's C++ ``benchmark_model`` prints, from 2018 to today, into edgekit's row fields.

The tool's format moved over the years (see tests/profile for recorded samples):
``Average inference timings in us: Warmup: .., Init: .., no stats: ..`` (2018) became
``Inference timings in us: Init: .., First inference: .., Warmup (avg): .., Inference (avg): ..``;
memory is either ``Peak memory footprint (MB): init=.. overall=..`` or
``Memory footprint delta from the start of the tool (MB): ..``; lines may carry
an ``INFO: `` prefix; numbers may be in e-notation (``avg=2.95034e+06``).
Per-op timings come from the "Run Order" table after "Operator-wise Profiling
Info for Regular Benchmark Runs" (``--enable_op_profiling=true``).

benchmark_model reports count, min, max, mean and std of the runs, not each
run, so percentiles are None here (its newer builds may add p5/median/p95,
which are kept when present).

Example:
    >>> out = parse("count=50 first=2 curr=2 min=1 max=4 avg=2.5 std=1\\n")
    >>> out["runs"]["mean"], out["runs"]["max"]
    (0.0025, 0.004)
"""

from __future__ import annotations

import re
from typing import Any

_NUM = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_KV = re.compile(rf"(\w+)=({_NUM})")
_PREFIX = re.compile(r"^(?:INFO|WARNING|ERROR|VERBOSE): ")
_STAT_KEYS = {"first": "first", "curr": "curr", "min": "min", "max": "max", "avg": "mean", "std": "std",
              "p5": "p5", "median": "p50", "p50": "p50", "p95": "p95", "p90": "p90", "p99": "p99"}


def _lines(text: str) -> list[str]:
    return [_PREFIX.sub("", ln.rstrip("\r")) for ln in text.splitlines()]


def parse_stat(line: str) -> dict[str, float]:
    """``count=50 first=.. min=.. avg=2.95e+06 std=..`` (microseconds) -> ms, keys as in latency_stats.summarize."""
    vals = dict(_KV.findall(line))
    out: dict[str, Any] = {"count": int(float(vals.get("count", 0)))}
    for key, name in _STAT_KEYS.items():
        if key in vals:
            out[name] = float(vals[key]) / 1000.0
    if "min" not in out and "curr" in out:  # "count=1 curr=3512391": all runs the same
        out.update(min=out["curr"], max=out["curr"], mean=out["curr"], std=0.0)
    return out


def _after(line: str, label: str) -> float | None:
    m = re.search(re.escape(label) + rf"\s*({_NUM})", line)
    return float(m.group(1)) if m else None


def _bracket(line: str) -> str | None:
    m = re.search(r"\[(.*)\]\s*$", line)
    return m.group(1) if m else None


def parse_ops(lines: list[str]) -> list[dict[str, Any]]:
    """Rows of the first "Run Order" table after the regular-runs header."""
    marker = "Operator-wise Profiling Info for Regular Benchmark Runs"
    start = next((i for i, ln in enumerate(lines) if marker in ln), None)
    if start is None:
        return []
    header_at = next((i for i in range(start, len(lines)) if "[node type]" in lines[i]), None)
    if header_at is None:
        return []
    cols = re.findall(r"\[([^\]]+)\]", lines[header_at])
    numeric = cols[1:-1]  # between [node type] and [Name]
    nums = r"(?P<nums>(?:" + _NUM + r"%?\s+){" + str(len(numeric)) + "})"
    row_re = re.compile(r"^\s*(?P<type>\S.*?)\s+" + nums + r"(?P<name>.*)$")
    names = {"first": "first_ms", "avg ms": "avg_ms", "%": "percent", "cdf%": "cdf_percent", "mem KB": "mem_kb",
             "times called": "times_called", "start": "start_ms"}
    ops = []
    for ln in lines[header_at + 1:]:
        m = row_re.match(ln)
        if not ln.strip() or m is None:
            break
        values = [float(v.rstrip("%")) for v in m.group("nums").split()]
        op = {"type": m.group("type").strip(), "name": m.group("name").strip()}
        for col, v in zip(numeric, values):
            op[names.get(col, col)] = int(v) if col == "times called" else v
        ops.append(op)
    return ops


def parse(text: str) -> dict[str, Any]:
    """Everything edgekit uses from one benchmark_model run; missing parts are None."""
    lines = _lines(text)
    out: dict[str, Any] = {"threads": None, "graph": None, "model_size_mb": None, "init_ms": None,
                           "first_inference_ms": None, "warmup": None, "runs": None,
                           "memory": {"peak_mb": None, "init_mb": None, "delta_mb": None}}
    blocks: list[dict[str, float]] = []  # warm-up, then regular runs; the profiler's own
    for ln in lines:  # "Timings (microseconds): count=..." lines do not start with count=
        if ln.startswith("Num threads:") or ln.startswith("#threads used for CPU inference:"):
            out["threads"] = int(_bracket(ln) or 0) or out["threads"]
        elif ln.startswith("Graph:"):
            out["graph"] = _bracket(ln)
        elif ln.startswith("The input model file size (MB):"):
            out["model_size_mb"] = _after(ln, "(MB):")
        elif ln.startswith("Initialized session in"):
            out["init_ms"] = _after(ln, "Initialized session in")
        elif ln.lstrip().startswith("count="):
            blocks.append(parse_stat(ln))
        elif "inference timings in us:" in ln.lower():
            init_us, first_us = _after(ln, "Init:"), _after(ln, "First inference:")
            if init_us is not None:
                out["init_ms"] = init_us / 1000.0
            if first_us is not None:
                out["first_inference_ms"] = first_us / 1000.0
        elif ln.startswith("Peak memory footprint (MB):"):
            out["memory"].update(init_mb=_after(ln, "init="), peak_mb=_after(ln, "overall="))
        elif ln.startswith("Memory footprint delta from the start of the tool (MB):"):
            out["memory"].update(init_mb=_after(ln, "init="), delta_mb=_after(ln, "overall="))
    if blocks:
        out["warmup"] = blocks[0] if len(blocks) > 1 else None
        out["runs"] = blocks[-1]
    if out["first_inference_ms"] is None and out["warmup"]:
        out["first_inference_ms"] = out["warmup"].get("first")
    out["ops"] = parse_ops(lines)
    return out
