"""Accuracy per group of the eval data (site, camera, region, speaker...): the group the average hides.

The groups come from an array ``group`` in the eval .npz, or from ``--groups FILE`` (a .npy
array, or a .txt file with one label per line), one label per eval sample. Per group: its
samples, source and converted accuracy against the audit's reference (each with a Wilson 95%
interval), their agreement, and the guard's false-positive rate on the group's clean samples.
A group's gap is the accuracy of all the other samples minus its own. A group with fewer
than ``MIN_SAMPLES`` samples is listed but kept out of the largest gap: at 30 samples one
sample is already 3.3 points, and its 95% interval is about +-15 points wide.

Example:
    >>> import numpy as np
    >>> g = np.array(["a"] * 40 + ["b"] * 40)
    >>> y = np.zeros(80, int)
    >>> conv = np.r_[np.zeros(40, int), np.zeros(30, int), np.ones(10, int)]   # group b: 75%
    >>> r = per_group(g, y, conv, flagged=np.zeros(80, bool))
    >>> r["largest_gap"]["converted"]
    {'group': 'b', 'gap_points': 25.0}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError

MIN_SAMPLES = 30  # below this a group's accuracy is too uncertain to gate on (see the module docstring)
MAX_GROUPS = 100  # more distinct labels than this is an id column, not groups
Z95 = 1.959964


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (95% by default); sound at 0% and 100%, unlike k/n +- z*se.

    Example:
        >>> [round(v, 3) for v in wilson(30, 30)]
        [0.886, 1.0]
    """
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, float(centre - half)), 6), round(min(1.0, float(centre + half)), 6)


def _read(path: Path) -> np.ndarray:
    from ..data import _read_numpy

    if not path.is_file():
        raise DataError(f"{path}: groups file not found (a .npy array or a .txt file, one label per sample)")
    if path.suffix == ".txt":
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: groups file is not UTF-8 text (byte {err.start})") from None
        return np.array([ln.strip() for ln in lines if ln.strip()])
    if path.suffix not in (".npy", ".npz"):
        raise DataError(f"{path}: groups must be a .npy array or a .txt file with one label per line")
    arr = _read_numpy(path)
    if isinstance(arr, dict):
        if "group" not in arr:
            raise DataError(f"{path}: no array named 'group' (found {sorted(arr)})")
        arr = arr["group"]
    return np.asarray(arr)


def load_groups(groups: Any, eval_data: Any, samples: int) -> np.ndarray | None:
    """One group label (str) per eval sample: from ``groups`` (a path or an array), else from the eval .npz's
    ``group`` array, else None. DataError when the count does not match the eval data's."""
    where = "--groups"
    if groups is None:
        if not isinstance(eval_data, (str, Path)) or Path(eval_data).suffix != ".npz":
            return None
        from ..data import _read_numpy

        arrays = _read_numpy(Path(eval_data))
        if not isinstance(arrays, dict) or "group" not in arrays:
            return None
        arr, where = arrays["group"], f"{eval_data} (array 'group')"
    elif isinstance(groups, (str, Path)):
        arr, where = _read(Path(groups)), str(groups)
    else:
        arr = np.asarray(groups)
    if arr.ndim != 1:
        raise DataError(f"{where}: groups must be one label per sample, shape (N,), got {arr.shape}")
    if len(arr) != samples:
        raise DataError(f"{where}: {len(arr)} group labels for {samples} eval samples; give one per sample, "
                        "in the eval data's order")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(f"{where}: group labels contain NaN or Inf")
    names = np.array([str(v) for v in arr.tolist()])
    if len(np.unique(names)) > MAX_GROUPS:
        raise DataError(f"{where}: {len(np.unique(names))} distinct group labels (at most {MAX_GROUPS}); "
                        "is this an id column?")
    return names


def _gap(acc_all: np.ndarray, member: np.ndarray) -> float:
    """Accuracy of the samples outside the group minus the group's, in points."""
    return 100.0 * (float(np.mean(acc_all[~member])) - float(np.mean(acc_all[member])))


def per_group(groups: np.ndarray, y: np.ndarray, conv_top1: np.ndarray, flagged: np.ndarray,
              src_top1: np.ndarray | None = None, min_samples: int = MIN_SAMPLES) -> dict[str, Any]:
    """Per group: samples, accuracy (with Wilson 95% interval) of the converted and the source model, their
    agreement, the guard's false-positive rate, the gap to the other samples; then the largest gap per model
    among the groups with at least ``min_samples`` samples (None when fewer than two groups have that many)."""
    ok_conv = conv_top1 == y
    ok_src = None if src_top1 is None else src_top1 == y
    rows = []
    for name in sorted(np.unique(groups), key=lambda s: (len(s), s)):  # "2" before "10"
        m = groups == name
        n = int(m.sum())
        row: dict[str, Any] = {"group": str(name), "samples": n, "enough": n >= min_samples}
        for key, ok in (("converted", ok_conv), ("source", ok_src)):
            if ok is None:
                row.update({key: None, f"{key}_ci95": None, f"{key}_gap_points": None})
                continue
            k = int(ok[m].sum())
            row.update({key: round(k / n, 4), f"{key}_ci95": [round(v, 4) for v in wilson(k, n)],
                        f"{key}_gap_points": round(_gap(ok, m), 2) if (~m).any() else None})
        row["agreement"] = None if src_top1 is None else round(float(np.mean(src_top1[m] == conv_top1[m])), 4)
        row["drop_points"] = None if ok_src is None else round(100.0 * (row["source"] - row["converted"]), 2)
        row["guard_fpr"] = round(float(np.mean(flagged[m])), 4)
        rows.append(row)
    counted = [r for r in rows if r["enough"]]
    largest: dict[str, Any] = {}
    for key in ("converted", "source"):
        cands = [r for r in counted if r[f"{key}_gap_points"] is not None]
        if len(counted) < 2 or not cands:
            largest[key] = None
            continue
        w = max(cands, key=lambda r: r[f"{key}_gap_points"])
        largest[key] = {"group": w["group"], "gap_points": w[f"{key}_gap_points"]}
    drops = [r for r in counted if r["drop_points"] is not None]
    return {"groups": rows, "largest_gap": largest, "min_samples": min_samples,
            "too_few": [r["group"] for r in rows if not r["enough"]],
            "worst_drop": None if not drops else {"group": (w := max(drops, key=lambda r: r["drop_points"]))["group"],
                                                  "drop_points": w["drop_points"]},
            "method": (f"accuracy per group against the reference, with Wilson 95% intervals; a group's gap is the "
                       f"accuracy of all other samples minus its own; groups under {min_samples} samples are "
                       "listed but not counted in the largest gap; guard FPR = share of the group's clean samples "
                       "EdgeModel flags with the default Policy")}
