"""Data checks for the audit: leakage between reference data and eval data, label balance, odd samples.

Leakage: an eval sample that also sits in the calibration or training data (exactly,
or nearly: a mean absolute difference under ``NEAR`` of the value range) makes the
eval accuracy an overestimate. Near duplicates are found by brute force in chunks
(fine up to some 10^4 x 10^4 samples; larger sets are subsampled and the report says so).

Example:
    >>> import numpy as np
    >>> a = np.zeros((3, 4), np.float32); b = np.ones((2, 4), np.float32); b[1] = 0
    >>> leakage(a, b, (0.0, 1.0))["exact"]
    1
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

NEAR = 0.01  # mean |a - b| as a share of the value range: below a hundredth, two samples are the same picture
MAX_SAMPLES = 20_000


def _flat(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, np.float32).reshape(len(x), -1)


def sample_hashes(x: np.ndarray) -> list[str]:
    return [hashlib.sha256(r.tobytes()).hexdigest() for r in _flat(x)]


def array_sha256(x: np.ndarray) -> str:
    """sha256 of the float32 samples as the audit used them (shape-independent of the file format)."""
    return hashlib.sha256(_flat(x).tobytes()).hexdigest()


def leakage(ref: np.ndarray, ev: np.ndarray, value_range: tuple[float, float], seed: int = 0) -> dict[str, Any]:
    """How many eval samples have an exact or near duplicate in ``ref``."""
    note = None
    gen = np.random.default_rng(seed)
    if len(ref) > MAX_SAMPLES:
        ref = ref[gen.choice(len(ref), MAX_SAMPLES, replace=False)]
        note = f"reference data subsampled to {MAX_SAMPLES}"
    ref_h = set(sample_hashes(ref))
    exact = np.array([h in ref_h for h in sample_hashes(ev)])
    a, b = _flat(ref).astype(np.float64), _flat(ev).astype(np.float64)
    limit = NEAR * (float(value_range[1] - value_range[0]) or 1.0)
    near = np.zeros(len(b), bool)
    # RMS distance comes cheaply from matrix products, and RMS >= mean |a - b|: RMS <= limit
    # implies mean |a - b| <= limit, a conservative (stricter) near-duplicate test.
    a2 = (a * a).sum(axis=1)
    d = a.shape[1]
    for s in range(0, len(b), 1024):
        chunk = b[s:s + 1024]
        sq = (chunk * chunk).sum(axis=1)[:, None] + a2[None, :] - 2.0 * chunk @ a.T
        near[s:s + 1024] = np.sqrt(np.maximum(sq.min(axis=1), 0.0) / d) <= limit
    near &= ~exact
    return {"exact": int(exact.sum()), "near": int(near.sum()), "eval_samples": int(len(b)),
            "share": float((exact | near).mean()), "near_limit": limit, "note": note,
            "examples": [int(i) for i in np.flatnonzero(exact | near)[:10]]}


def balance(y: np.ndarray | None, labels: list[str] | None = None) -> dict[str, Any] | None:
    """Samples per class and the smallest class's share against the largest's."""
    if y is None:
        return None
    classes, counts = np.unique(np.asarray(y).astype(np.int64), return_counts=True)
    names = [labels[c] if labels and 0 <= c < len(labels) else str(int(c)) for c in classes]
    return {"counts": dict(zip(names, (int(c) for c in counts))), "min_over_max": float(counts.min() / counts.max())}


def odd_samples(x: np.ndarray, value_range: tuple[float, float] | None = None) -> dict[str, Any]:
    """Constant samples (no information) and samples outside the reference value range.

    NaN and Inf never get here: loading refuses them with the sample count (edgekit.data).
    """
    flat = _flat(x)
    const = flat.max(axis=1) == flat.min(axis=1)
    out: dict[str, Any] = {"samples": int(len(flat)), "constant": int(const.sum()),
                           "constant_examples": [int(i) for i in np.flatnonzero(const)[:10]]}
    if value_range is not None:
        lo, hi = value_range
        span = (hi - lo) or 1.0
        outside = (flat.min(axis=1) < lo - 0.1 * span) | (flat.max(axis=1) > hi + 0.1 * span)
        out["out_of_range"] = int(outside.sum())
    return out
