"""The calibration sample: a seeded random draw, stratified by label when labels exist.

Calibration data often arrives ordered (an image folder is read class by class): keeping the
first N samples would fit quantization ranges and OOD thresholds to the first classes only.
The draw is recorded in the manifest (seed, samples offered, count per class).

Example:
    >>> import numpy as np
    >>> from edgekit.data import Dataset
    >>> ds = Dataset(np.zeros((30, 2), np.float32), np.repeat([0, 1, 2], 10))
    >>> sample, counts = draw(ds, limit=9, seed=0)
    >>> len(sample), counts
    (9, {'0': 3, '1': 3, '2': 3})
"""

from __future__ import annotations

import numpy as np

from ..data import Dataset


def class_ids(y: np.ndarray | None) -> np.ndarray | None:
    """Integer class per sample from labels (ints or one-hot), or None when y is not class labels."""
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        return y.argmax(axis=1)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
        return y.astype(np.int64)
    return None


def _names(ids: np.ndarray, labels: list[str] | None) -> dict[str, int]:
    values, counts = np.unique(ids, return_counts=True)
    return {(labels[v] if labels and 0 <= v < len(labels) else str(int(v))): int(c) for v, c in zip(values, counts)}


def draw(ds: Dataset, *, limit: int, seed: int) -> tuple[Dataset, dict[str, int] | None]:
    """At most ``limit`` samples of ``ds`` (seeded; per-class shares kept when it has labels),
    shuffled, and the count per class in the sample (None without labels)."""
    n = len(ds)
    ids = class_ids(ds.y)
    rng = np.random.default_rng(seed)
    if n <= limit:
        rows = rng.permutation(n)
    elif ids is None:
        rows = rng.choice(n, size=limit, replace=False)
    else:
        rows = _stratified(ids, limit, rng)
    sample = ds.take(rows)
    return sample, (None if ids is None else _names(ids[rows], ds.labels))


def _stratified(ids: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Each class gets its share of ``limit`` (largest remainders round up), drawn at random."""
    classes, counts = np.unique(ids, return_counts=True)
    exact = counts * (limit / len(ids))
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: limit - int(take.sum())]:
        take[i] += 1
    picked = [rng.choice(np.flatnonzero(ids == c), size=k, replace=False) for c, k in zip(classes, take) if k]
    return rng.permutation(np.concatenate(picked))
