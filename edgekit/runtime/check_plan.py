"""One input's clean-path check, compiled once at load: range, finiteness and the OOD score of one sample
in a handful of numpy calls on preallocated buffers.

``InputGuard`` calls the plan for a single C-contiguous float32 sample of the model's fixed shape (the
device-loop case). The plan reads the whole input three times, one pass each: min, max, and for large
inputs the sum over each sketch cell's rows (``_pool``); everything after that works on the small
pooled rows (at most 16 x width x channels values). It returns ``None`` when the sample leaves the
tightest range bound (or holds NaN / Inf: NaN fails every comparison, Inf passes the largest finite
bound), and the guard then runs its exact, slower checks, so a flagged or refused sample gets the same
verdict as before. The score equals ``calibration_stats.OODScorer``'s to float32 rounding
(tests/runtime/test_check_plan.py compares them on real and hostile inputs).

What the plan folds together (calibration_stats.OODScorer has the maths):
- the sketch: the row sums of each cell, then one small matrix product that sums the cell's columns
  and divides by the cell size (``E``), written straight into a buffer;
- the sketch's cell z-score, mean and mean square: one product of [sketch^2, sketch] with the
  stacked weights;
- the colour feature: one product gives each cell's channel mean and mean square;
- roughness: one subtraction over the rows laid end to end, the row-spanning differences zeroed, one
  dot product.

Shapes it does not compile (padding, other ranks, pooling along one axis only) keep the general path.

Example:
    >>> import numpy as np
    >>> from edgekit.calibration_stats import compute_input_stats, OODScorer
    >>> calib = np.random.default_rng(0).uniform(-1, 1, (200, 32, 32, 3)).astype("float32")
    >>> ref = compute_input_stats(calib).ood
    >>> plan = OODPlan.build(OODScorer(ref), (32, 32, 3))
    >>> x = calib[:1].copy()
    >>> bool(abs(plan(x, float(x.min()), float(x.max())) - float(OODScorer(ref)(x)[0])) < 1e-4)
    True
"""

from __future__ import annotations

import math

import numpy as np

from ..calibration_stats import OODScorer, _plan
from .native import PlanStruct, kernel

_ADD = np.add.reduce
_dot, _mul, _sub, _max0, _sqrt = np.dot, np.multiply, np.subtract, np.maximum, np.sqrt
_log, _sqrt_f = math.log, math.sqrt


class OODPlan:
    """Callable: (one float32 sample (1, *shape), its min, its max) -> OOD score (a float).

    Not thread-safe (its buffers): ``InputGuard`` runs it under a non-blocking lock and scores with the
    general scorer when another thread holds it."""

    def __init__(self, scorer: OODScorer, shape: tuple[int, ...], pool: tuple[int, int] | None):
        self.shape = tuple(shape)
        self.scorer = scorer
        f = scorer.features
        c = shape[-1] if len(shape) > 1 else 1
        self.channels = c
        self.pool = pool
        # [sketch^2, sketch] -> (cell part, mean, mean square): the weights stacked, one product
        self.w2 = np.ascontiguousarray(np.concatenate([scorer.sq_w, scorer.lin_w], axis=0), np.float32)
        self.buf = np.empty((2, f), np.float32)
        self.sq, self.lin = self.buf[0], self.buf[1]
        self.buf_flat = self.buf.reshape(-1)  # views made once: a reshape per call costs ~0.15 us each
        self.colour = scorer.colour if len(shape) + 1 > 2 else None
        if self.colour is not None:
            self.cells = f // c
            self.chan_mean = np.full(c, 1.0 / c, np.float32)
            self.cell_stats = np.empty(2 * self.cells, np.float32)
            self.buf_cells = self.buf.reshape(-1, c)
        if pool is not None:
            (k0, k1), (h, w) = pool, shape[:2]
            self.p_rows = h // k0
            self.rows = np.empty((self.p_rows, w * c), np.float32)  # each cell row's sum over k0 image rows
            # sums the k1 columns of each cell per channel and divides by the cell size: sketch means
            self.E = (np.kron(np.ones((k1, 1)), np.eye(c)) / float(k0 * k1)).astype(np.float32)
            self.lin2d = self.lin.reshape(-1, c)
            # roughness: neighbouring columns' differences over the rows laid end to end (one contiguous
            # subtraction, 2-3x cheaper than the same on the 2-D strided views); the differences that span
            # two rows (the last c of each row but the last) are zeroed before the dot product
            wc = w * c
            self.diff = np.empty(self.p_rows * wc - c, np.float32)
            self.cross = np.array([r * wc + j for r in range(self.p_rows - 1) for j in range(wc - c, wc)], np.intp)
            self.rows_flat = self.rows.reshape(-1)
            self.k0, self.wc, self.c = k0, wc, c
            self.rough_scale = (1.0 / k0) ** 2 / float(self.p_rows * (w - 1) * c)
        self.rough = scorer.rough and pool is not None

    @classmethod
    def build(cls, scorer: OODScorer | None, shape: tuple[int, ...]) -> "OODPlan | None":
        """A plan for samples of ``shape``, or None when the scorer's one-sample path is not compiled here."""
        if scorer is None or scorer.log_eps is None or any(d <= 0 for d in shape) or not shape:
            return None
        size = math.prod(shape)
        if size == scorer.features:
            return cls(scorer, shape, None)
        if len(shape) != 3:
            return None
        ks, pad, _, _, _ = _plan(tuple(shape))
        if pad is not None or len(ks) != 2 or ks[0] < 2 or ks[1] < 2:
            return None
        h, w, c = shape
        if (h // ks[0]) * (w // ks[1]) * c != scorer.features:
            return None
        return cls(scorer, shape, (ks[0], ks[1]))

    def __call__(self, x: np.ndarray, lo: float, hi: float) -> float:
        s = self.scorer
        lin, sq = self.lin, self.sq
        rough = 0.0
        if self.pool is None:
            flat = x.reshape(-1)
            np.copyto(lin, flat)
        else:
            rows = self.rows
            _ADD(x.reshape(self.p_rows, self.k0, self.wc), axis=1, out=rows)  # the one pass over the input
            _dot(rows.reshape(-1, self.E.shape[0]), self.E, out=self.lin2d)
            if self.rough:
                d, flat_rows, c = self.diff, self.rows_flat, self.c
                _sub(flat_rows[c:], flat_rows[:-c], out=d)
                d[self.cross] = 0.0  # index assignment: a third of np.put's cost here
                rough = _sqrt_f(float(_dot(d, d)) * self.rough_scale)
        _mul(lin, lin, out=sq)
        c2, m, m2 = _dot(self.buf_flat, self.w2).tolist()
        gm, gi, eps = s.g_mean, s.g_inv, s.log_eps
        std = _sqrt_f(max(m2 - m * m, 0.0))
        glob = max(abs(m - gm[0]) * gi[0], abs(_log(std + eps) - gm[1]) * gi[1])
        if self.rough:
            glob = max(glob, (rough / (std + eps) - gm[2]) * gi[2])
        score = max(_sqrt_f(max(c2 + s.cell_const, 0.0)) * s.inv_cell, glob * s.inv_glob)
        if s.reach is not None:
            lo_med, lo_inv, hi_med, hi_inv = s.reach
            score = max(score, (lo - lo_med) * lo_inv, (hi_med - hi) * hi_inv)
        if self.colour is not None:
            st = self.cell_stats
            _dot(self.buf_cells, self.chan_mean, out=st)  # per cell: mean square, mean
            n = self.cells
            e2, mean = st[:n], st[n:]
            _mul(mean, mean, out=mean)
            _sub(e2, mean, out=e2)
            _sqrt(_max0(e2, 0.0, out=e2), out=e2)
            spread = float(_ADD(e2, axis=None)) / n
            colour = _log(spread + eps) - _log(std + eps)
            score = max(score, abs(colour - self.colour[0]) * self.colour[1])
        return score


class NativePlan:
    """Callable: one float32 sample (1, *shape) -> its OOD score (0.0 without a scorer), -1.0 when it
    leaves [lo_bound, hi_bound] or holds NaN / Inf, -2.0 when it is not a C-contiguous float32 array of
    the shape: the bounds check and ``OODPlan`` in one C call (guard_kernel.c, built by native.py).

    Not thread-safe (its scratch buffers), like OODPlan. tests/runtime/test_native.py holds its scores
    to OODPlan's; native.py checks the struct's layout and the bounds verdicts when it builds the kernel.

    Example:
        >>> import numpy as np
        >>> from edgekit.calibration_stats import compute_input_stats, OODScorer
        >>> calib = np.random.default_rng(0).uniform(-1, 1, (200, 32, 32, 3)).astype("float32")
        >>> plan = OODPlan.build(OODScorer(compute_input_stats(calib).ood), (32, 32, 3))
        >>> fast = NativePlan.build((32, 32, 3), -2.0, 2.0, plan)
        >>> x = calib[:1].copy()
        >>> fast is None or abs(fast(x) - plan(x, float(x.min()), float(x.max()))) < 1e-4
        True
    """

    def __init__(self, lib, shape: tuple[int, ...], lo_bound: float, hi_bound: float, plan: OODPlan | None):
        p = self.struct = PlanStruct()
        p.size = math.prod(shape)
        p.lo_bound, p.hi_bound = lo_bound, hi_bound
        self._keep = []  # the arrays the struct points into live as long as this plan
        if plan is not None:
            s = plan.scorer
            p.f = s.features
            p.c = plan.channels
            p.mode = 1 if plan.pool is None else 2
            if plan.pool is not None:
                p.h, p.w = shape[0], shape[1]
                p.k0, p.k1 = plan.pool
                p.rough, p.rough_scale = int(plan.rough), plan.rough_scale if plan.rough else 0.0
                rows = np.empty(plan.rows.size, np.float32)
                p.rows = rows.ctypes.data
                self._keep.append(rows)
            w6 = np.ascontiguousarray(plan.w2.reshape(2, -1, 3).transpose(0, 2, 1), np.float32)  # (2f, 3) -> (6, f)
            lin = np.empty(s.features, np.float64)
            p.w6, p.lin = w6.ctypes.data, lin.ctypes.data
            self._keep += [w6, lin]
            p.g_mean[:] = (list(s.g_mean) + [0.0] * 3)[:3]
            p.g_inv[:] = (list(s.g_inv) + [0.0] * 3)[:3]
            p.log_eps, p.cell_const, p.inv_cell, p.inv_glob = s.log_eps, s.cell_const, s.inv_cell, s.inv_glob
            if s.reach is not None:
                p.reach, p.reach_p[:] = 1, s.reach
            if plan.colour is not None:
                p.colour, p.colour_p[:] = 1, plan.colour
        self.fn = lib.checker(p, self._keep)  # a builtin: callers on the hot path call it directly

    def __call__(self, x: np.ndarray) -> float:
        return self.fn(x)

    @classmethod
    def build(cls, shape: tuple[int, ...], lo_bound: float, hi_bound: float,
              plan: OODPlan | None) -> "NativePlan | None":
        """The kernel's plan, or None (no kernel here: native.why_not() says why)."""
        lib = kernel()
        if lib is None or any(d <= 0 for d in shape):
            return None
        return cls(lib, tuple(shape), lo_bound, hi_bound, plan)
