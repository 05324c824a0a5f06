"""Outliers against the rest of the fleet: the modified z-score (median and MAD), with a floor on the scale.

For a metric x over the devices that report it: ``z_i = 0.6745 (x_i - median) / MAD`` where MAD is the
median of ``|x_i - median|`` (Iglewicz and Hoaglin; 0.6745 makes it a standard score for normal data).
A device is an outlier when ``z > 3.5`` (only the bad side: a lower error rate is no problem).
When most devices agree exactly (MAD 0: three devices at 0% OOD), a plain MAD would make any
difference infinite, so the scale is at least a floor per metric (``FLOORS``: one percentage point
of a rate, 0.05 PSI, 1 ms or a quarter of the median latency): a device must differ from the median by more
than 5.2 floors (3.5 / 0.6745) to be an outlier.
With fewer than three devices there is no "rest of the fleet" and nothing is scored.

Example:
    >>> scores([0.01, 0.0, 0.02, 0.5], floor=0.01)
    [-0.3372, -1.0117, 0.3373, 32.7132]
"""

from __future__ import annotations

import statistics

Z_LIMIT = 3.5
K = 0.6745
MIN_DEVICES = 3

# metric -> (floor on the MAD, relative floor (share of the median) or 0)
FLOORS = {"ood_share": (0.01, 0.0), "psi_max": (0.05, 0.0), "error_rate": (0.01, 0.0),
          "fallback_rate": (0.01, 0.0), "incident_rate": (0.01, 0.0), "latency_p95_ms": (1.0, 0.25),
          "output_shift": (0.02, 0.0)}


def scores(values: list[float], floor: float = 0.0, relative: float = 0.0) -> list[float]:
    """Modified z-scores of ``values`` (rounded to 4 places); the MAD is at least ``max(floor, relative*|median|)``."""
    med = statistics.median(values)
    mad = statistics.median(abs(v - med) for v in values)
    scale = max(mad, floor, relative * abs(med))
    if scale == 0:
        return [0.0 for _ in values]
    return [round(K * (v - med) / scale, 4) for v in values]


def flag(metrics: dict[str, dict[str, float | None]]) -> dict[str, dict[str, float]]:
    """``metrics[device][metric]`` -> ``{device: {metric: z}}`` for the outliers only (z over Z_LIMIT)."""
    out: dict[str, dict[str, float]] = {}
    names = sorted({m for per in metrics.values() for m in per})
    for m in names:
        have = [(dev, float(v)) for dev, per in metrics.items() if (v := per.get(m)) is not None]
        if len(have) < MIN_DEVICES:
            continue
        floor, rel = FLOORS.get(m, (0.0, 0.0))
        for (dev, _), z in zip(have, scores([v for _, v in have], floor, rel)):
            if z > Z_LIMIT:
                out.setdefault(dev, {})[m] = z
    return out


def total_variation(a: dict[str, float], b: dict[str, float]) -> float:
    """Half the L1 distance of two distributions over labels (0: the same, 1: disjoint)."""
    keys = set(a) | set(b)
    return round(0.5 * sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in keys), 6)


def median_distribution(dists: list[dict[str, float]]) -> dict[str, float]:
    """Label by label median of several distributions, renormalised."""
    keys = sorted({k for d in dists for k in d})
    med = {k: statistics.median(d.get(k, 0.0) for d in dists) for k in keys}
    total = sum(med.values())
    return {k: v / total for k, v in med.items()} if total else med
