"""ROC curves, ROC AUC and thresholds for a chosen false-positive rate. numpy only.

Scores are "higher = more out of distribution". Negatives are clean samples,
positives out-of-distribution ones. AUC is the Mann-Whitney probability that a random
positive scores above a random negative (ties count half), so it needs no curve.

Example:
    >>> import numpy as np
    >>> clean, ood = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.35, 0.9, 1.0])
    >>> roc_auc(clean, ood)
    0.9166666666666666
    >>> threshold_for_fpr(clean, 0.25)
    0.3
"""

from __future__ import annotations

from typing import Any

import numpy as np


def roc_auc(neg: np.ndarray, pos: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + half the ties."""
    neg, pos = np.asarray(neg, np.float64).ravel(), np.asarray(pos, np.float64).ravel()
    both = np.concatenate([neg, pos])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(len(both), np.float64)
    ranks[order] = np.arange(1, len(both) + 1)
    # average ranks over ties
    _, inv, counts = np.unique(both, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / counts)[inv]
    r_pos = ranks[len(neg):].sum()
    return float((r_pos - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def roc_curve(neg: np.ndarray, pos: np.ndarray, points: int = 101) -> list[tuple[float, float]]:
    """(false-positive rate, true-positive rate) pairs from (0, 0) to (1, 1), at most ``points`` of them."""
    neg, pos = np.asarray(neg, np.float64).ravel(), np.asarray(pos, np.float64).ravel()
    cuts = np.unique(np.quantile(np.concatenate([neg, pos]), np.linspace(0, 1, points)))
    pts = {(1.0, 1.0), (0.0, 0.0)}
    pts |= {(float(np.mean(neg > t)), float(np.mean(pos > t))) for t in cuts}
    return sorted(pts)


def threshold_for_fpr(neg: np.ndarray, fpr: float) -> float:
    """The smallest score t with share(neg > t) <= fpr: flag above t.

    Taken from the sorted clean scores themselves (no interpolation), so the rate on
    these samples is at most ``fpr``.
    """
    s = np.sort(np.asarray(neg, np.float64).ravel())
    allowed = int(np.floor(fpr * len(s)))  # samples that may stay above the threshold
    return float(s[len(s) - 1 - allowed]) if allowed < len(s) else float(s[0])


class Normalizer:
    """Maps a score to "multiples of its clean tail": (s - median) / (q99 - median) on clean data.

    Puts two signals with unrelated units on one scale, so max(a, b) combines them.
    """

    def __init__(self, clean: np.ndarray, q: float = 0.99):
        clean = np.asarray(clean, np.float64)
        self.median = float(np.median(clean))
        self.spread = float(np.quantile(clean, q) - self.median) or 1e-12

    def __call__(self, s: np.ndarray) -> np.ndarray:
        return (np.asarray(s, np.float64) - self.median) / self.spread

    def inverse(self, z: float) -> float:
        return self.median + z * self.spread


def split_clean(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of two seeded halves of the clean data."""
    idx = np.random.default_rng(seed).permutation(n)
    return np.sort(idx[: n // 2]), np.sort(idx[n // 2:])


def held_out_fpr(clean: np.ndarray, target_fpr: float, seed: int = 0) -> float:
    """The false-positive rate of a threshold fitted on unseen clean data: 2-fold, fit on one half,
    count on the other, both ways, averaged. An in-sample rate would be at most ``target_fpr`` by construction."""
    a, b = split_clean(len(clean), seed)
    rates = [np.mean(clean[test] > threshold_for_fpr(clean[fit], target_fpr)) for fit, test in ((a, b), (b, a))]
    return float(np.mean(rates))


def signal_summary(clean: np.ndarray, sets: dict[str, np.ndarray], target_fpr: float, seed: int = 0) -> dict[str, Any]:
    """One signal: AUC per OOD set, its threshold for ``target_fpr`` on all clean data, the
    detection rate it gives per set, and its held-out false-positive rate (``held_out_fpr``)."""
    t = threshold_for_fpr(clean, target_fpr)
    return {
        "threshold": t,
        "measured_fpr": held_out_fpr(clean, target_fpr, seed),
        "sets": {name: {"auc": round(roc_auc(clean, s), 4), "detection": float(np.mean(s > t))}
                 for name, s in sets.items()},
    }
