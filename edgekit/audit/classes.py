"""Class-level regressions: accuracy per class of source and converted model, and the worst drop.

Quantization can cost one class far more than the average shows (a class whose
features sit near the int8 grid's coarse end); the average hides it, this does not.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 1, 2, 2])
    >>> r = per_class(y, src_top1=y, conv_top1=np.array([0, 0, 1, 1, 2, 0]), labels=["a", "b", "c"])
    >>> r["worst"]["label"], r["worst"]["drop_points"]
    ('c', 50.0)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def per_class(y: np.ndarray, src_top1: np.ndarray, conv_top1: np.ndarray,
              labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Per class in ``y``: samples, source and converted accuracy, drop in points; plus the worst class."""
    rows = []
    for c in np.unique(y):
        m = y == c
        src, conv = float(np.mean(src_top1[m] == c)), float(np.mean(conv_top1[m] == c))
        name = labels[int(c)] if labels is not None and 0 <= int(c) < len(labels) else str(int(c))
        rows.append({"class": int(c), "label": name, "samples": int(m.sum()), "source": round(src, 4),
                     "converted": round(conv, 4), "drop_points": round(100.0 * (src - conv), 2)})
    worst = max(rows, key=lambda r: r["drop_points"])
    return {"classes": rows, "worst": worst,
            # one sample in the smallest class: drops finer than this are noise, not regressions
            "resolution_points": round(100.0 / min(r["samples"] for r in rows), 2)}
