"""The profiling part of ``edgekit demo``: fp32 against int8 on this machine, as a compare table.

Example:
    >>> print(profile_demo("digits-fp32.tflite", "digits-int8.tflite"))   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from .comparison import compare, render_comparison
from .profiler import profile_model
from .render import fmt_mb, fmt_ms


def profile_demo(fp32_path: str | Path, int8_path: str | Path, *, runs: int = 200, warmup: int = 20) -> str:
    """Profile both models (1 thread, each in a fresh process) and return the text block to print."""
    docs = [profile_model(p, runs=runs, warmup=warmup, threads=1) for p in (fp32_path, int8_path)]
    lines = [f"profile: {runs} runs each, 1 thread, fresh process per model "
             f"({docs[0]['rows'][0]['interpreter']['package']} {docs[0]['rows'][0]['interpreter']['version']})"]
    for doc in docs:
        row = doc["rows"][0]
        lines.append(f"  {doc['model']['file']}: p50 {fmt_ms(row['latency_ms']['p50'])} ms, "
                     f"p95 {fmt_ms(row['latency_ms']['p95'])} ms, peak {fmt_mb(row['memory']['peak_mb'])} MB")
    lines += ["", render_comparison(compare(*docs))]
    return "\n".join(lines)
