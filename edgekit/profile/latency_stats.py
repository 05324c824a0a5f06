"""Latency statistics of one profile: percentiles, spread, drift blocks, histogram, bootstrap noise test.

Percentiles use linear interpolation between order statistics (numpy's default,
the same as LiteRT's benchmark_litert_model.py). std is the sample standard
deviation (ddof=1).

Example:
    >>> s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    >>> s["p50"], s["max"]
    (3.0, 100.0)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

PERCENTILES = (50, 90, 95, 99)
BLOCKS = 5  # warm runs are cut into this many consecutive blocks to see drift within a profile


def summarize(samples_ms: Sequence[float]) -> dict[str, float | int]:
    """min, mean, std, p50, p90, p95, p99, max and throughput (inferences/s from the mean)."""
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no latency samples")
    out: dict[str, float | int] = {
        "count": int(x.size),
        "min": float(x.min()),
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
    }
    for p, v in zip(PERCENTILES, np.percentile(x, PERCENTILES)):
        out[f"p{p}"] = float(v)
    out["max"] = float(x.max())
    out["throughput_per_s"] = 1000.0 / out["mean"] if out["mean"] > 0 else None
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in out.items()}


def percentile_curve(samples_ms: Sequence[float], points: int = 101) -> list[tuple[float, float]]:
    """(percentile, latency) pairs from 0 to 100 for the percentile plot."""
    q = np.linspace(0, 100, points)
    return list(zip(q.tolist(), np.percentile(np.asarray(samples_ms, dtype=np.float64), q).tolist()))


def block_medians(samples_ms: Sequence[float], blocks: int = BLOCKS) -> list[float]:
    """Medians of consecutive blocks: their range shows drift (heat, other load) inside one profile."""
    x = np.asarray(samples_ms, dtype=np.float64)
    if x.size < blocks * 5:
        return [float(np.median(x))] if x.size else []
    return [float(np.median(part)) for part in np.array_split(x, blocks)]


def bootstrap_diff_ci(
    a: Sequence[float], b: Sequence[float], *, q: float = 50, resamples: int = 2000, level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Bootstrap confidence interval of percentile_q(b) - percentile_q(a) (seeded: reports are reproducible)."""
    xa, xb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(seed)
    qa = np.percentile(xa[rng.integers(0, xa.size, size=(resamples, xa.size))], q, axis=1)
    qb = np.percentile(xb[rng.integers(0, xb.size, size=(resamples, xb.size))], q, axis=1)
    lo, hi = np.percentile(qb - qa, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def histogram(samples_ms: Sequence[float], bins: int = 40, clip_percentile: float = 99.5):
    """(edges, counts) over [min, p99.5] plus the count of samples beyond it, so one outlier
    does not squash the whole plot into a single bar."""
    x = np.asarray(samples_ms, dtype=np.float64)
    hi = float(np.percentile(x, clip_percentile))
    lo = float(x.min())
    if hi <= lo:
        hi = lo + max(abs(lo) * 1e-3, 1e-6)
    counts, edges = np.histogram(x[x <= hi], bins=bins, range=(lo, hi))
    return edges.tolist(), counts.tolist(), int((x > hi).sum())
