"""Calibration statistics: what "normal input" looked like at conversion time.

``edgekit convert`` computes them on the calibration data and stores them in the
manifest; the runtime uses them to flag out-of-range and out-of-distribution input
and to measure drift. numpy only.

What is stored per input (all on the float input the caller passes, before quantization):
- per channel (last axis): min, max, mean, std, quantiles, and decile bin edges with
  the reference share of values in each bin (for PSI drift scores);
- an OOD reference: the input average-pooled to a small grid ("sketch"), its per-cell
  mean and std, plus each sample's sketch mean, log std and (pooled inputs) roughness; thresholds are 1.3x the 99.5th percentile of
  5-fold held-out scores on the calibration data, so a score over 1.0 means
  "clearly less typical than 99.5% of normal input";
- its reach: the median and a bound of each sample's smallest and largest value. Nearly every
  photo reaches near both ends of the range its preprocessing maps pixels to; pixels scaled for
  another range do not (0..1 pixels fed to a [-1, 1] model never go below 0), and a global shift
  of scale or offset keeps the shape features above unchanged, so this is what catches it;
- for inputs with several channels, a colour feature (``_colour``) with its own limit: an NCHW
  image read as NHWC is nearly grey.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = compute_input_stats(rng.normal(size=(500, 8, 8, 1)).astype("float32"))
    >>> float(ood_scores(ref.ood, rng.normal(size=(4, 8, 8, 1))).max()) < 2.0
    True
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

from .manifest import Bins, InputStats, OODReference

_MIN, _MAX = np.minimum.reduce, np.maximum.reduce

QUANTILES = (0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999)
SKETCH_MAX_CELLS = 16  # per spatial axis: keeps the manifest small for big images
_EPS_FRACTION = 0.05  # std floor, as a share of the channel's overall spread
_THRESHOLD_QUANTILE = 0.995
_THRESHOLD_MARGIN = 1.3  # headroom: flag what is clearly beyond the calibration tail (test sets have wider tails)
_FOLDS = 5
_LOG_FLOOR = 0.05  # std floor of the log features (log units)
# Reach bounds: 98% of calibration samples reach below (above) them, plus 10% of the data's spread
# (as the range check's tolerance; 5% flagged 1.8% of clean digits, whose maximum is 15/16 or 1).
# Not the 99.5% of the other features: a few photos (a crop of sky) never get dark, and a
# bound past them would miss every sample scaled for the wrong range.
_REACH_QUANTILE = 0.98
_REACH_MARGIN = 0.1


def _channels_last(x: np.ndarray) -> np.ndarray:
    """(N, ..., C) -> (M, C); a rank-1 sample is treated as one channel per feature."""
    if x.ndim == 1:
        return x.reshape(-1, 1)
    return x.reshape(-1, x.shape[-1])


def _pool_sizes(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(max(1, math.ceil(d / SKETCH_MAX_CELLS)) for d in shape)


@functools.lru_cache(maxsize=64)
def _plan(shape: tuple[int, ...]) -> tuple:
    """How to pool a sample of this shape (batch axis excluded), worked out once per shape:
    (pool sizes, padding or None, [(reshape, axis) per outer reduce], last reshape or None,
    scale from row sums to row means)."""
    rank = len(shape)
    spatial = shape[:-1] if rank > 1 else (math.prod(shape),)
    ks = _pool_sizes(spatial)
    if rank <= 1:  # (F,) vectors: pool the features in blocks of k
        k = ks[0]
        pad = [(0, 0), (0, (-spatial[0]) % k)] if spatial[0] % k else None
        return ks, pad, [], (-1, k) if k > 1 else None, 1.0
    pad = [(0, 0)] + [(0, (-d) % k) for d, k in zip(spatial, ks)] + [(0, 0)] if any(
        d % k for d, k in zip(spatial, ks)) else None
    dims = [d + (-d) % k for d, k in zip(spatial, ks)] + [shape[-1]]
    steps = []
    for axis, k in enumerate(ks[:-1], start=1):
        if k > 1:
            steps.append((tuple(dims[: axis - 1]) + (dims[axis - 1] // k, k) + tuple(dims[axis:]), axis + 1))
            dims[axis - 1] //= k
    last = tuple(dims[:-2]) + (dims[-2] // ks[-1], ks[-1], dims[-1]) if ks[-1] > 1 else None
    return ks, pad, steps, last, ks[-1] / math.prod(ks)


class Pooled:
    """An input pooled for the OOD features, in one pass over it.

    ``sums``: (N, F) sums over each sketch cell (``cell`` values each); ``rows``: the input summed
    along every spatial axis but the last (``row_scale`` turns those sums into means), which
    roughness reads at full resolution along that last axis; ``pooled``: whether any pooling
    happened (small inputs are used as they are).
    """

    __slots__ = ("sums", "rows", "cell", "pooled", "row_scale")

    def __init__(self, x: np.ndarray):
        x = np.asarray(x, dtype=np.float32)
        n = x.shape[0]
        ks, pad, steps, last, self.row_scale = _plan(x.shape[1:])
        self.cell = math.prod(ks)
        self.pooled = self.cell > 1
        if x.ndim <= 2:  # (N, F) vectors
            flat = x.reshape(n, -1)
            self.rows = flat
            flat = np.pad(flat, pad, mode="edge") if pad else flat
            self.sums = np.add.reduce(flat.reshape((n,) + last), axis=2) if last else flat
            return
        if pad:
            x = np.pad(x, pad, mode="edge")
        # One spatial axis at a time: much faster than a mean over several strided axes at once.
        # Over an outer axis the inner rows are long and
        # contiguous, so one reduce is fast; over the last spatial axis the inner run is just the
        # channels, where einsum's loop beats numpy's strided reduce 4x (and a BLAS product, which
        # may wake threads).
        for shape, axis in steps:
            x = np.add.reduce(x.reshape((n,) + shape), axis=axis)
        self.rows = x
        if last:
            x = np.einsum("...kc->...c", x.reshape((n,) + last))
        self.sums = x.reshape(n, -1)

    def roughness(self) -> np.ndarray:
        """Per-sample RMS difference between neighbours along the last spatial axis of the row means.

        Natural input is smooth; noise is not, and pooling hides it: this is the feature that
        catches noise on large images.
        """
        r = self.rows
        n = r.shape[0]
        d = (r[:, 1:] - r[:, :-1]) if r.ndim <= 3 else (r[..., 1:, :] - r[..., :-1, :])
        d = d.reshape(n, -1)
        if d.shape[1] == 0:
            return np.zeros(n, np.float32)
        return np.sqrt(np.einsum("ij,ij->i", d, d) * np.float32(self.row_scale ** 2 / d.shape[1]))


def _sketch(p: Pooled) -> np.ndarray:
    """Each sample's spatial axes average-pooled to at most 16 cells per axis: (N, F)."""
    return p.sums * np.float32(1.0 / p.cell)


def _colour(s: np.ndarray, channels: int, std: np.ndarray, log_eps: float) -> np.ndarray:
    """Per sample: log of the sketch cells' mean spread across channels, less the log of the sketch std.

    Photos have colour; an NCHW image read as NHWC has as channels neighbours of one plane, nearly
    equal, as a grey frame has. Scale-free: a scaling mistake leaves it alone (the reach sees that).
    """
    c = s.reshape(s.shape[0], -1, channels)
    mean = np.add.reduce(c, axis=2) * np.float32(1.0 / channels)  # ufuncs: std() costs several times more
    var = np.add.reduce(c * c, axis=2) * np.float32(1.0 / channels) - mean * mean
    spread = np.add.reduce(np.sqrt(np.maximum(var, 0.0)), axis=1) * (1.0 / c.shape[1])
    return np.log(spread + log_eps) - np.log(std + log_eps)


def _global_features(p: Pooled, s: np.ndarray, log_eps: float) -> np.ndarray:
    """Per sample: sketch mean, log sketch std, and for pooled inputs roughness / std.

    ``s`` is ``_sketch(p)``. Mean and std on the sketch (the input itself when it is small), so the
    runtime reads a large input once. The log makes "nearly constant" (a blank frame, std -> 0) a
    large z-score. Pooling hides noise, so pooled inputs add roughness, read on a few rows at full
    resolution; small inputs show noise in their cells directly and skip it.
    """
    mean = s.mean(axis=1)
    std = np.sqrt(np.maximum(np.einsum("ij,ij->i", s, s) / s.shape[1] - mean * mean, 0.0))
    feats = [mean, np.log(std + log_eps)]
    if p.pooled:
        feats.append(p.roughness() / (std + log_eps))
    return np.stack(feats, axis=1)


class OODScorer:
    """``ood_scores`` with the reference folded into two small matrices: what the runtime calls per predict.

    The squared cell z-score sum(((x - m) / s)^2) expands to x^2 . (1/s^2) - 2 x . (m/s^2) + const,
    so cell score, sketch mean and mean square come out of two small matrix products on the sketch
    (N, F) instead of a dozen numpy calls per sample.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> scorer = OODScorer(compute_input_stats(rng.normal(size=(200, 4)).astype("float32")).ood)
        >>> scorer(np.full((1, 4), 50.0, np.float32)) > 1.0
        array([ True])
    """

    def __init__(self, ref: OODReference):
        mean = np.asarray(ref.sketch_mean, np.float64)
        inv_var = 1.0 / np.asarray(ref.sketch_std, np.float64) ** 2
        f = mean.shape[0]
        self.features = f
        self.sq_w = np.zeros((f, 3), np.float32)  # columns: cell part, sample mean, sample mean square
        self.lin_w = np.zeros((f, 3), np.float32)
        self.sq_w[:, 0] = inv_var / f
        self.lin_w[:, 0] = -2.0 * inv_var * mean / f
        self.lin_w[:, 1] = 1.0 / f
        self.sq_w[:, 2] = 1.0 / f
        self.cell_const = float(np.sum(inv_var * mean * mean) / f)
        self._scaled: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # weights for cell sums, by cell size
        gm, gs = ref.global_mean, ref.global_std
        self.g_mean = tuple(float(v) for v in gm)
        self.g_inv = tuple(1.0 / float(v) for v in gs)
        # Manifests written before log features and roughness: linear std, no roughness.
        self.log_eps = ref.log_eps
        self.rough = self.log_eps is not None and len(gm) > 2  # pooled inputs only
        # Folding the thresholds in here saves two divisions per call.
        self.inv_cell = 1.0 / float(ref.cell_threshold)
        self.inv_glob = 1.0 / float(ref.global_threshold)
        # reach as (low median, 1 / (low bound - median), high median, 1 / (median - high bound))
        r = ref.reach
        self.reach = None if r is None else (float(r[0]), 1.0 / (r[1] - r[0]), float(r[2]), 1.0 / (r[2] - r[3]))
        self.colour = None if ref.colour is None else (float(ref.colour[0]), 1.0 / float(ref.colour[1]))

    def reach_scores(self, x: np.ndarray) -> np.ndarray | None:
        """Per sample: how far its smallest value stays above, or its largest below, what calibration
        samples reach (1.0 at the bound; 0 at the median or beyond); None without a reach reference."""
        if self.reach is None:
            return None
        lo_med, lo_inv, hi_med, hi_inv = self.reach
        flat = x.reshape(x.shape[0], -1)
        low = (_MIN(flat, axis=1) - lo_med) * lo_inv
        return np.maximum(np.maximum(low, (hi_med - _MAX(flat, axis=1)) * hi_inv), 0.0)

    def _moments(self, x: np.ndarray) -> tuple[np.ndarray, Pooled | None]:
        """(N, 3) mean squared cell z-score less ``cell_const``, sketch mean, sketch mean square;
        and the pooled input (None when the input is small enough to be its own sketch)."""
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] == self.features:
            r = np.dot(flat * flat, self.sq_w)
            r += np.dot(flat, self.lin_w)
            return r, None
        p = Pooled(x)
        # The cell sums are used as they are: 1/cell is folded into the weights (one call less).
        if p.cell not in self._scaled:
            self._scaled[p.cell] = (self.sq_w / np.float32(p.cell * p.cell), self.lin_w / np.float32(p.cell))
        sq_w, lin_w = self._scaled[p.cell]
        r = np.dot(p.sums * p.sums, sq_w)
        r += np.dot(p.sums, lin_w)
        return r, p

    def parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cell RMS z-score, largest global z-score) per sample, before thresholds."""
        return self._parts(x)[:2]

    def _parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """parts(), and the colour score (over 1.0: out of distribution) or None."""
        r, pooled = self._moments(x)
        r = r.astype(np.float64)
        cell = np.sqrt(np.maximum(r[:, 0] + self.cell_const, 0.0))
        std = np.sqrt(np.maximum(r[:, 2] - r[:, 1] ** 2, 0.0))
        gm, gi, eps = self.g_mean, self.g_inv, self.log_eps
        glob = np.abs(r[:, 1] - gm[0]) * gi[0]
        if eps is None:
            return cell, np.maximum(glob, np.abs(std - gm[1]) * gi[1]), None
        glob = np.maximum(glob, np.abs(np.log(std + eps) - gm[1]) * gi[1])
        colour = None
        if self.colour is not None and x.ndim > 2:
            sketch = x.reshape(x.shape[0], -1) if pooled is None else pooled.sums * np.float32(1.0 / pooled.cell)
            colour = np.abs(_colour(sketch, x.shape[-1], std, eps) - self.colour[0]) * self.colour[1]
        if not self.rough or pooled is None:
            return cell, glob, colour
        # One-sided: rougher than normal is noise; too smooth already shows in the std.
        return cell, np.maximum(glob, (pooled.roughness() / (std + eps) - gm[2]) * gi[2]), colour

    def __call__(self, x: np.ndarray, extremes: tuple[float, float] | None = None) -> np.ndarray:
        """One score per sample of float32 x (N, ...); over 1.0 means out of distribution.

        ``extremes``: a one-sample x's (min, max) when the caller has them already (the input guard)."""
        if x.shape[0] != 1 or self.log_eps is None:
            reach = self.reach_scores(x)
            cell, glob, colour = self._parts(x)
            score = np.maximum(cell * self.inv_cell, glob * self.inv_glob)
            for extra in (reach, colour):
                score = score if extra is None else np.maximum(score, extra)
            return score
        # One sample (the device-loop case): plain floats beat numpy calls on 3 numbers.
        reach = 0.0
        if self.reach is not None:
            lo, hi = extremes if extremes is not None else (float(_MIN(x, axis=None)), float(_MAX(x, axis=None)))
            lo_med, lo_inv, hi_med, hi_inv = self.reach
            reach = max((lo - lo_med) * lo_inv, (hi_med - hi) * hi_inv)
        r, pooled = self._moments(x)
        c2, m, m2 = r[0].tolist()
        gm, gi, eps = self.g_mean, self.g_inv, self.log_eps
        std = math.sqrt(max(m2 - m * m, 0.0))
        glob = max(abs(m - gm[0]) * gi[0], abs(math.log(std + eps) - gm[1]) * gi[1])
        if self.rough and pooled is not None:
            glob = max(glob, (float(pooled.roughness()[0]) / (std + eps) - gm[2]) * gi[2])
        score = max(math.sqrt(max(c2 + self.cell_const, 0.0)) * self.inv_cell, glob * self.inv_glob, reach)
        if self.colour is not None and x.ndim > 2:
            sketch = x.reshape(1, -1) if pooled is None else pooled.sums * np.float32(1.0 / pooled.cell)
            colour = _colour(sketch, x.shape[-1], np.array([std]), eps)[0]
            score = max(score, abs(float(colour) - self.colour[0]) * self.colour[1])
        return np.array([score])


def _ood_parts(ref: OODReference, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return OODScorer(ref).parts(np.asarray(x, dtype=np.float32))


def _reference(x: np.ndarray, floor: float, log_eps: float) -> OODReference:
    """The reference of x with thresholds 1.0 (not fitted yet: parts() then returns raw scores)."""
    p = Pooled(x)  # one pass over the data for both the sketch and the global features
    s = _sketch(p)
    g = _global_features(p, s, log_eps)
    g_floor = np.array([floor, _LOG_FLOOR, _LOG_FLOOR][: g.shape[1]])  # log std, roughness/std: scale-free
    colour = None
    if x.ndim > 2 and x.shape[-1] > 1:  # (mean, limit): the limit as the other thresholds, on z-scores
        c = _colour(s, x.shape[-1], s.std(axis=1), log_eps)
        sd = max(float(c.std()), _LOG_FLOOR)
        z = float(np.quantile(np.abs(c - c.mean()) / sd, _THRESHOLD_QUANTILE)) * _THRESHOLD_MARGIN
        colour = (float(c.mean()), sd * max(z, 1.0))
    return OODReference(
        sketch_shape=tuple(s.shape[1:]), sketch_mean=_short(s.mean(axis=0)),
        sketch_std=_short(np.maximum(s.std(axis=0), floor)), global_mean=tuple(g.mean(axis=0).tolist()),
        global_std=tuple(np.maximum(g.std(axis=0), g_floor).tolist()), cell_threshold=1.0, global_threshold=1.0,
        held_out=0, log_eps=log_eps, colour=colour)


def _short(values: np.ndarray) -> tuple[float, ...]:
    """The values at float32 precision, each the shortest decimal that reads back as the same float32
    (0.1, not 0.10000000149011612): what the runtime computes with, in a third fewer manifest bytes and
    ~35% less JSON parsing at every load (the sketch is most of a large model's manifest numbers).

    >>> _short(np.array([0.1, 1 / 3]))
    (0.1, 0.33333334)
    """
    return tuple(float(v) for v in np.asarray(values, np.float32).ravel().astype(str))


def _reach(x: np.ndarray, spread: float) -> tuple[float, float, float, float]:
    """(median, bound) of the per-sample minimum, then of the maximum (see the module docstring)."""
    flat = x.reshape(x.shape[0], -1)
    lows, highs = flat.min(axis=1), flat.max(axis=1)
    margin = spread * _REACH_MARGIN
    return (float(np.median(lows)), float(np.quantile(lows, _REACH_QUANTILE)) + margin,
            float(np.median(highs)), float(np.quantile(highs, 1.0 - _REACH_QUANTILE)) - margin)


def _fit_ood(x: np.ndarray, spread: float, rng: np.random.Generator) -> OODReference:
    n = x.shape[0]
    floor = max(spread * _EPS_FRACTION, 1e-6)
    log_eps = max(spread * 1e-3, 1e-9)  # std or roughness a thousandth of the data's spread counts as ~0
    ref = _reference(x, floor, log_eps)
    if n < 10:  # too few samples to hold any out: a loose fixed bound (z-scores), no reach
        return dataclasses.replace(ref, cell_threshold=4.0, global_threshold=6.0)
    ref = dataclasses.replace(ref, reach=_reach(x, spread))
    # Thresholds from k-fold held-out scores: every calibration sample is scored once by a
    # reference that did not see it, so the 99.5th percentile rests on n scores, not n/5
    # (with 60 held-out digits it was just the maximum, and 2% of clean test digits tripped it).
    folds = np.array_split(rng.permutation(n), _FOLDS)
    cells, globs = [], []
    for k, hold in enumerate(folds):
        fit = np.concatenate([f for j, f in enumerate(folds) if j != k])
        cell, glob = _ood_parts(_reference(x[fit], floor, log_eps), x[hold])
        cells.append(cell)
        globs.append(glob)
    # floored: constant calibration data scores 0 everywhere, and a threshold must stay positive
    cell = max(float(np.quantile(np.concatenate(cells), _THRESHOLD_QUANTILE)) * _THRESHOLD_MARGIN, 1e-6)
    glob = max(float(np.quantile(np.concatenate(globs), _THRESHOLD_QUANTILE)) * _THRESHOLD_MARGIN, 1e-6)
    return dataclasses.replace(ref, cell_threshold=cell, global_threshold=glob, held_out=int(n))


def ood_scores(ref: OODReference, x: np.ndarray) -> np.ndarray:
    """One score per sample; over 1.0 means out of distribution. x is (N, ...) float."""
    return OODScorer(ref)(np.asarray(x, dtype=np.float32))


MAX_ALLOWED_VALUES = 16  # an integer input seen with at most this many distinct values records them


def compute_input_stats(x: np.ndarray, *, seed: int = 0, role: str = "data", integer: bool = False,
                        one_channel: bool = False) -> InputStats:
    """Statistics of one input's calibration data, shape (N, ...), for the manifest.

    ``role`` (manifest.role_of): a ``state`` or ``shared`` input (a recurrent state, a scalar sample
    rate) gets one channel over all its values and no OOD reference: its values are checked for
    range, never scored as an image or a signal. ``integer``: an integer input with at most
    MAX_ALLOWED_VALUES distinct values records them (``values``: the others are flagged).
    ``one_channel``: one channel over all values, for an input whose last axis is not channels but
    any length (an ONNX audio input [batch, samples]; the runtime reads it as one channel too)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError("calibration statistics need at least one sample")
    values = None
    if integer:
        seen = np.unique(x)
        values = tuple(float(v) for v in seen) if seen.size <= MAX_ALLOWED_VALUES else None
    if role != "data":
        x = x.reshape(x.shape[0], -1, 1)
    per = x.reshape(-1, 1) if one_channel else _channels_last(x if x.ndim > 1 else x[:, None])
    qs = np.quantile(per, QUANTILES, axis=0)  # (Q, C)
    spread = float(np.quantile(per, 0.999) - np.quantile(per, 0.001)) or float(per.std()) or 1.0
    deciles = np.quantile(per, np.linspace(0.1, 0.9, 9), axis=0)  # (9, C)
    edges, shares = [], []
    for c in range(per.shape[1]):
        e = np.unique(deciles[:, c])
        counts = np.bincount(np.searchsorted(e, per[:, c], side="right"), minlength=len(e) + 1)
        edges.append(e.tolist())
        shares.append((counts / counts.sum()).tolist())
    return InputStats(
        samples=int(x.shape[0]), channels=int(per.shape[1]),
        min=tuple(per.min(axis=0).tolist()), max=tuple(per.max(axis=0).tolist()),
        mean=tuple(per.mean(axis=0).tolist()), std=tuple(per.std(axis=0).tolist()),
        quantiles={str(q): tuple(qs[i].tolist()) for i, q in enumerate(QUANTILES)},
        bins=Bins(tuple(tuple(e) for e in edges), tuple(tuple(s) for s in shares)),
        ood=_fit_ood(x, spread, np.random.default_rng(seed)) if role == "data" else None,
        values=values,
    )


def psi(reference_share, edges, values: np.ndarray) -> float:
    """Population stability index of ``values`` against the reference bins (0 = same)."""
    counts = np.bincount(np.searchsorted(np.asarray(edges), values, side="right"), minlength=len(edges) + 1)
    actual = counts / max(1, counts.sum())
    ref = np.asarray(reference_share)
    eps = 1e-4
    a, r = np.clip(actual, eps, None), np.clip(ref, eps, None)
    return float(np.sum((a - r) * np.log(a / r)))
