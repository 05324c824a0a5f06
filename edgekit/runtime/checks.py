"""The input and output checks, prepared once per model so a call costs a few numpy reductions.

Input (after coercion to a float32 batch):
- hard, raise InputValidationError: NaN or Inf (shape, dtype and emptiness are checked
  while coercing);
- soft, flag a sample (failure kind ``ood``): values beyond the calibration min/max by
  more than ``range_tolerance`` of the span; a share of values over ``max_clip_share``
  that int8 quantization would saturate; an OOD score over ``ood_threshold``.

The fast path is one min and one max per sample and channel against the tightest of the
range and clip bounds; only a batch that fails it pays for the exact shares.

Output (after dequantization), per output, failure kind ``output``: NaN or Inf,
probabilities that do not sum to 1 within ``sum_tolerance`` (plus the output's quantization
error), top-1 probability under ``min_confidence``. With the manifest's guard section, the
output-side OOD score of the first classifier output (output_score.py) over its threshold
flags the sample as kind ``ood`` (the policy's ``on_ood`` applies, like the input-side score).

Example:
    >>> import numpy as np
    >>> from edgekit.calibration_stats import compute_input_stats
    >>> from edgekit.runtime.policy import Policy
    >>> calib = np.random.default_rng(0).uniform(0, 1, (300, 4)).astype("float32")
    >>> guard = InputGuard((4,), compute_input_stats(calib), None, Policy())
    >>> guard(np.full((1, 4), 9.0, np.float32)).flagged.tolist()
    [True]
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputValidationError
from ..calibration_stats import OODScorer
from ..manifest import InputStats
from .check_plan import NativePlan, OODPlan
from .native import kernel
from .output_score import output_score
from .policy import Policy

_BIG = np.float32(np.finfo(np.float32).max)  # a finite bound: Inf must fail the fast path
_MIN, _MAX = np.minimum.reduce, np.maximum.reduce
_dot = np.dot
_isfinite = math.isfinite
_F32 = np.dtype(np.float32)
_TRUE = np.ones(1, bool)
_TRUE.flags.writeable = False
NOT_CHECKED = "not checked"  # a check's value when there was nothing to check against (no manifest)


@dataclass(frozen=True)
class Check:
    """One check's verdict for a call: ok, the measured value, the limit, and which samples failed."""

    name: str
    kind: str  # failure kind for the policy: input, ood, output, latency
    ok: bool
    value: Any = None
    limit: Any = None
    failed: tuple[int, ...] = ()

    def __str__(self) -> str:
        if self.value == NOT_CHECKED:  # never "ok 0.0%": nothing was compared
            return f"{self.name:14} {NOT_CHECKED}"
        verdict = "ok" if self.ok else "FLAGGED"
        value = "" if self.value is None else f" {self.value}"
        limit = "" if self.limit is None else f" (limit {self.limit})"
        where = f" samples {list(self.failed)}" if self.failed and not self.ok else ""
        return f"{self.name:14} {verdict}{value}{limit}{where}"


class InputVerdict:
    """Per-sample results of the soft input checks; None means "all clean" (the fast path)."""

    __slots__ = ("ood", "range_share", "clip_share", "flagged", "in_qrange", "_guard")

    def __init__(self, guard, ood, range_share=None, clip_share=None, in_qrange=False):
        self._guard = guard
        self.in_qrange = in_qrange  # proven: every value quantizes without saturating (no clip needed)
        self.ood = ood
        self.range_share = range_share
        self.clip_share = clip_share
        flagged = None
        if ood is not None and guard.ood_limit is not None:
            if ood.shape[0] == 1:  # one sample: a float comparison, not two numpy calls
                flagged = _TRUE if ood[0] > guard.ood_limit else None
            else:
                f = ood > guard.ood_limit
                flagged = f if f.any() else None
        if range_share is None and clip_share is None:
            self.flagged = flagged
            return
        if range_share is not None:
            f = range_share > 0
            flagged = f if flagged is None else flagged | f
        if clip_share is not None and guard.clip_limit is not None:
            f = clip_share > guard.clip_limit
            flagged = f if flagged is None else flagged | f
        self.flagged = None if flagged is None or not flagged.any() else flagged

    parts = None

    @property
    def ood_value(self):
        """``ood`` for the monitor (a one-sample verdict of the compiled plan gives its float)."""
        return self.ood

    @property
    def qrange(self) -> list[bool]:
        return [self.in_qrange]

    def checks(self, n: int, prefix: str = "") -> list[Check]:
        out = self._checks(n)
        return out if not prefix else [Check(prefix + c.name, c.kind, c.ok, c.value, c.limit, c.failed) for c in out]

    def _checks(self, n: int) -> list[Check]:
        g = self._guard
        out = [Check("shape", "input", True, list(g.sample_shape)), Check("finite", "input", True)]
        zero = np.zeros(n)
        if g.has_range:
            out.append(_soft(g.range_name, zero if self.range_share is None else self.range_share, 0.0, fmt="{:.1%}"))
        else:  # no calibration statistics: there is no range to be inside of
            out.append(Check("range", "ood", True, NOT_CHECKED))
        if g.quantized:
            clip = zero if self.clip_share is None else self.clip_share
            out.append(_soft("int8_clip", clip, g.clip_limit, fmt="{:.1%}"))
        if self.ood is not None:
            out.append(_soft("ood", self.ood, g.ood_limit, fmt="{:.2f}"))
        elif g.scorer is None and g.ood_limit is not None:  # on, but no OOD reference to score against
            out.append(Check("ood", "ood", True, NOT_CHECKED))
        return out


class _Verdict1(InputVerdict):
    """The clean-path verdict of one sample scored by a compiled plan (InputVerdict without its logic):
    the score kept as a float; its one-element ``ood`` array is made only when read (the monitor takes
    ``ood_value``, the float, so most calls never make it)."""

    __slots__ = ("score",)

    @property
    def ood(self) -> np.ndarray:
        try:
            return _OOD_SLOT.__get__(self)
        except AttributeError:
            arr = np.array((self.score,))
            _OOD_SLOT.__set__(self, arr)
            return arr

    @property
    def ood_value(self) -> float:
        return self.score


_OOD_SLOT = InputVerdict.__dict__["ood"]  # InputVerdict's slot, which _Verdict1's property shadows


def _verdict1(guard: "InputGuard", score: float) -> InputVerdict:
    """The clean-path verdict of one sample scored by the compiled plan."""
    v = _NEW_VERDICT(_Verdict1)
    v._guard = guard
    v.in_qrange = guard._qr
    v.score = score
    v.range_share = v.clip_share = None
    v.flagged = _TRUE if score > guard.ood_limit else None
    return v


_NEW_VERDICT = object.__new__


class InputsVerdict:
    """The verdicts of several inputs: a sample is flagged when any of its inputs is; ``ood`` is the
    worst input's score per sample."""

    __slots__ = ("parts", "names", "flagged", "ood", "qrange")

    def __init__(self, parts: list[InputVerdict], names: list[str]):
        self.parts, self.names = parts, names
        flagged = ood = None
        for v in parts:
            if v.flagged is not None:
                flagged = v.flagged if flagged is None else flagged | v.flagged
            if v.ood is not None:
                ood = v.ood if ood is None else np.fmax(ood, v.ood)
        self.flagged, self.ood = flagged, ood
        self.qrange = [v.in_qrange for v in parts]

    @property
    def ood_value(self):
        return self.ood

    def checks(self, n: int) -> list[Check]:
        return [c for name, v in zip(self.names, self.parts) for c in v.checks(n, f"{name}.")]

    def flagged_names(self, rows: np.ndarray) -> list[str]:
        """The inputs that flagged any of ``rows``."""
        return [name for name, v in zip(self.names, self.parts) if v.flagged is not None and (v.flagged & rows).any()]


class InputChecks:
    """Callable: list of float32 batches (one per input) -> verdict; one InputGuard per input.

    One input returns that input's InputVerdict itself (the fast path)."""

    def __init__(self, names: list[str], guards: list["InputGuard"]):
        self.names, self.guards = list(names), list(guards)
        self._fast = guards[0] if len(guards) == 1 else None

    def __call__(self, batches: list[np.ndarray]):
        if self._fast is not None:
            return self._fast(batches[0])
        parts = []
        for name, g, b in zip(self.names, self.guards, batches):
            try:
                parts.append(g(b))
            except InputValidationError as err:
                raise InputValidationError(f"input {name!r}: {err}") from None
        return InputsVerdict(parts, self.names)


def _real_range(scale: float, zero_point: int, dtype: str) -> tuple[float, float]:
    """Float values that quantize without saturating, with the half step that rounds onto the edge."""
    info = np.iinfo(np.dtype(dtype))
    return scale * (info.min - zero_point - 0.5), scale * (info.max - zero_point + 0.5)


def _soft(name: str, values: np.ndarray, limit: float | None, *, fmt: str) -> Check:
    """A soft input check's verdict: the worst sample's value against the limit (None: report only)."""
    worst = float(values.max()) if values.size else 0.0
    if limit is None:
        return Check(name, "ood", True, fmt.format(worst))
    bad = values > limit
    return Check(name, "ood", not bad.any(), fmt.format(worst), fmt.format(limit),
                 tuple(int(i) for i in np.flatnonzero(bad)))


def channels_of(sample_shape: tuple[int, ...]) -> int:
    """The channel count of a sample: its last dimension, 1 for a scalar or a dynamic last dimension
    (an ONNX audio input [batch, samples] takes any length)."""
    return int(sample_shape[-1]) if sample_shape and sample_shape[-1] > 0 else 1


class InputGuard:
    """Callable: float32 batch -> InputVerdict; raises InputValidationError on NaN/Inf."""

    def __init__(self, sample_shape: tuple[int, ...], stats: InputStats | None,
                 quant: tuple[float, int, str] | None, policy: Policy, *, ood_limit: float | None | str = "policy"):
        """``ood_limit``: the OOD score limit when it is not the policy's (the manifest's guard section)."""
        self.sample_shape = tuple(sample_shape)
        self.channels = stats.channels if stats else channels_of(sample_shape)
        c = self.channels
        self.has_range = bool(stats) and policy.range_tolerance is not None
        if self.has_range:
            lo, hi = np.asarray(stats.min, np.float32), np.asarray(stats.max, np.float32)
            # A constant channel (span 0) still gets some room: a tenth of its magnitude, at least 1e-3.
            span = np.maximum(hi - lo, np.maximum(np.abs(hi), 1e-2) * 0.1)
            self.range_lo = lo - np.float32(policy.range_tolerance) * span
            self.range_hi = hi + np.float32(policy.range_tolerance) * span
        else:
            self.range_lo, self.range_hi = np.full(c, -_BIG), np.full(c, _BIG)
        self.quantized = quant is not None
        bounds = _real_range(*quant) if quant is not None else None
        self.clip_limit = policy.max_clip_share if self.quantized else None
        if bounds is not None and self.clip_limit is not None:
            self.clip_lo, self.clip_hi = np.float32(bounds[0]), np.float32(bounds[1])
        else:
            self.clip_lo, self.clip_hi = -_BIG, _BIG
        self.fast_covers_qrange = bounds is not None and self.clip_limit is not None
        self.fast_lo = np.maximum(self.range_lo, self.clip_lo).astype(np.float32)
        self.fast_hi = np.minimum(self.range_hi, self.clip_hi).astype(np.float32)
        self._scalar_bounds = (float(self.fast_lo.max()), float(self.fast_hi.min()))
        ood_ref = stats.ood if stats else None
        limit = policy.ood_threshold if ood_limit == "policy" else ood_limit
        # a plain float: numpy compares its scalars with float subclasses (Policy's default) far slower
        self.ood_limit = None if limit is None else float(limit)
        self.scorer = OODScorer(ood_ref) if ood_ref and self.ood_limit is not None else None
        if self.scorer is not None and any(d < 0 for d in self.sample_shape):
            self.scorer = _AnyLength(self.scorer)
        self.range_name = "range"
        # The clean path of one sample, compiled once (check_plan.py): a float32 C-contiguous (1, *shape)
        self._one_shape = (1,) + self.sample_shape if all(d > 0 for d in self.sample_shape) else None
        self._plan = OODPlan.build(self.scorer, self.sample_shape) if self._one_shape else None
        self._plan_lock = threading.Lock()
        self._lo_bound, self._hi_bound = self._scalar_bounds
        self._qr = self.fast_covers_qrange
        # The same clean path as one C call where the kernel builds (native.py); the numpy plan otherwise.
        # A scorer without a compiled numpy plan keeps the numpy path (its reach needs the min and max).
        self._native_plan = self._native = None
        if self._one_shape and (self.scorer is None or self._plan is not None):
            self._native_plan = NativePlan.build(self.sample_shape, self._lo_bound, self._hi_bound, self._plan)
            self._native = None if self._native_plan is None else self._native_plan.fn

    def __call__(self, batch: np.ndarray) -> InputVerdict:
        if batch.shape == self._one_shape:
            native = self._native
            if native is not None and self._plan_lock.acquire(False):
                try:
                    score = native(batch)  # -2 for a non-contiguous array (checked in C: cheaper than flags)
                finally:
                    self._plan_lock.release()
                if score >= 0.0:
                    if self.scorer is None:
                        return InputVerdict(self, None, in_qrange=self._qr)
                    return _verdict1(self, score)
                if score == -1.0:  # out of bounds or not finite: the exact checks decide
                    return self._general(batch)
            if not batch.flags.c_contiguous:
                return self._general(batch)
            lo, hi = float(_MIN(batch, axis=None)), float(_MAX(batch, axis=None))
            if lo >= self._lo_bound and hi <= self._hi_bound:  # NaN fails, Inf exceeds the finite bound
                plan = self._plan
                if plan is None:
                    scorer = self.scorer
                    ood = scorer and scorer(batch, (lo, hi))
                    return InputVerdict(self, ood, in_qrange=self._qr)
                if self._plan_lock.acquire(False):
                    try:
                        score = plan(batch, lo, hi)
                    finally:
                        self._plan_lock.release()
                    return _verdict1(self, score)
                return InputVerdict(self, self.scorer(batch, (lo, hi)), in_qrange=self._qr)
        return self._general(batch)

    def _general(self, batch: np.ndarray) -> InputVerdict:
        scorer = self.scorer
        # NaN fails every comparison and Inf exceeds _BIG, so a clean pass proves finiteness too.
        # First the whole batch against the tightest channel's bounds: two contiguous reductions and two
        # float comparisons (ufunc.reduce skips ndarray.min's Python wrapper; floats skip numpy scalars).
        lo, hi = float(_MIN(batch, axis=None)), float(_MAX(batch, axis=None))
        if lo >= self._scalar_bounds[0] and hi <= self._scalar_bounds[1]:
            # one sample: its min and max are the scorer's reach features, already at hand
            ood = scorer and scorer(batch, (lo, hi) if batch.shape[0] == 1 else None)
            return InputVerdict(self, ood, in_qrange=self.fast_covers_qrange)
        if self.channels == 1:
            return self._slow(batch, batch.reshape(batch.shape[0], -1, 1))
        per = batch.reshape(batch.shape[0], -1, self.channels)
        mins = per.min(axis=1)
        maxs = per.max(axis=1)
        if (mins >= self.fast_lo).all() and (maxs <= self.fast_hi).all():
            return InputVerdict(self, scorer and scorer(batch), in_qrange=self.fast_covers_qrange)
        return self._slow(batch, per)

    def _slow(self, batch, per) -> InputVerdict:
        finite = np.isfinite(per.reshape(per.shape[0], -1)).all(axis=1)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise InputValidationError(
                f"input has NaN or Inf in {len(bad)} of {batch.shape[0]} sample(s) (first: {int(bad[0])}); "
                "clean the data before predict")
        ood = self.scorer(batch) if self.scorer is not None else None
        size = per.shape[1] * per.shape[2]
        range_share = clip_share = None
        if self.has_range:
            outside = (per < self.range_lo) | (per > self.range_hi)
            range_share = outside.reshape(per.shape[0], -1).sum(axis=1) / size
        if self.clip_limit is not None:
            clipped = (per < self.clip_lo) | (per > self.clip_hi)
            clip_share = clipped.reshape(per.shape[0], -1).sum(axis=1) / size
        return InputVerdict(self, ood, range_share, clip_share)


class _AnyLength:
    """The OOD scorer of an input of any length (an ONNX audio input [batch, samples]): its reference
    was fitted on the calibration's length; a length whose sketch does not fit it is not scored."""

    __slots__ = ("scorer",)

    def __init__(self, scorer: OODScorer):
        self.scorer = scorer

    def __call__(self, batch, reach=None):
        try:
            return self.scorer(batch, reach)
        except ValueError:  # another sketch shape: nothing to compare with
            return None


class ValuesGuard(InputGuard):
    """An InputGuard for an integer input seen with few values (a sample rate: the manifest's
    ``values``): any other value counts as out of range, check ``values``."""

    def __init__(self, sample_shape, stats: InputStats, quant, policy: Policy, **kw):
        super().__init__(sample_shape, stats, quant, policy, **kw)
        self.values = np.asarray(stats.values, np.float32)
        self.range_name = "values"

    def __call__(self, batch: np.ndarray) -> InputVerdict:
        verdict = super().__call__(batch)
        off = ~np.isin(batch.reshape(batch.shape[0], -1), self.values).all(axis=1)
        if not self.has_range or not off.any():
            return verdict
        share = off.astype(np.float64) if verdict.range_share is None else np.maximum(verdict.range_share, off)
        return InputVerdict(self, verdict.ood, share, verdict.clip_share, in_qrange=verdict.in_qrange)


def input_guard(sample_shape, stats: InputStats | None, quant, policy: Policy, **kw) -> InputGuard:
    """The guard of one input: a ValuesGuard when the manifest records its allowed values."""
    cls = ValuesGuard if stats is not None and stats.values else InputGuard
    return cls(sample_shape, stats, quant, policy, **kw)


class OutputVerdict:
    """Per-sample output problems of one output; None where the check passed for every sample."""

    __slots__ = ("nonfinite", "bad_sum", "low_conf", "sums", "conf", "flagged")
    ood_flagged = None  # output-side OOD (OutputsVerdict only)
    parts = None

    @property
    def output_flagged(self):
        return self.flagged

    def __init__(self, nonfinite=None, bad_sum=None, low_conf=None, sums=None, conf=None):
        self.nonfinite, self.bad_sum, self.low_conf = nonfinite, bad_sum, low_conf
        self.sums, self.conf = sums, conf
        flagged = None
        for f in (nonfinite, bad_sum, low_conf):
            if f is not None:
                flagged = f if flagged is None else flagged | f
        self.flagged = flagged


CLEAN_OUTPUT = OutputVerdict()


class OutputGuard:
    """Callable: one float32 output (N, ...) -> OutputVerdict."""

    def __init__(self, probability: bool, float_output: bool, quant_step: float, policy: Policy):
        self.probability = probability
        self.float_output = float_output  # integer outputs cannot hold NaN: skip that scan
        self.sum_tol = float(policy.sum_tolerance + quant_step)
        self.min_conf = policy.min_confidence if probability else None
        self.sum_limit = f"1 ± {float(self.sum_tol):.3f}"
        self._ones: np.ndarray | None = None  # _sum1's vector, sized on first use
        lib = kernel()
        self._native_sum = None if lib is None else lib.sum

    def __call__(self, out: np.ndarray) -> OutputVerdict:
        n = out.shape[0]
        if self.probability:
            if n == 1 and self.min_conf is None and abs(self._sum1(out) - 1.0) <= self.sum_tol:
                return CLEAN_OUTPUT  # the one-sample fast path: one reduction
            sums = out.reshape(n, -1).sum(axis=1)
            ok = np.abs(sums - 1) <= self.sum_tol  # NaN compares False: it fails here too
            conf = None
            low = None
            if self.min_conf is not None:
                conf = out.reshape(n, -1).max(axis=1)
                low = conf < self.min_conf
                low = low if low.any() else None
            if ok.all() and low is None:
                return CLEAN_OUTPUT
            nonfinite = ~np.isfinite(out.reshape(n, -1)).all(axis=1) if not ok.all() else None
            bad_sum = ~ok if not ok.all() else None
            return OutputVerdict(_any(nonfinite), bad_sum, low, sums, conf)
        if not self.float_output:
            return CLEAN_OUTPUT
        # The sum as one BLAS dot product with ones proves finiteness (NaN or Inf anywhere makes it
        # non-finite); it is 2-6x cheaper than numpy's pairwise add.reduce and far cheaper than a mask. A sum
        # of finite values past float32's range (~3e38) overflows: then the exact scan below decides. Not
        # v.v: its squares overflow from ~1e19, and numpy 2 warns on every such call.
        if _isfinite(self._sum1(out)):
            return CLEAN_OUTPUT
        return OutputVerdict(_any(~np.isfinite(out.reshape(n, -1)).all(axis=1)))

    def _sum1(self, out: np.ndarray) -> float:
        """The sum of all of ``out``'s values: the kernel's float64 sum of a float32 array (native.py: one
        pass, and it cannot overflow), else a dot product with ones (BLAS, cheaper than add.reduce)."""
        if self._native_sum is not None and out.dtype is _F32:
            return self._native_sum(out)  # NaN also for a non-contiguous array: the exact path decides
        v = out.reshape(-1)
        ones = self._ones
        if ones is None or ones.shape[0] != v.shape[0] or v.dtype != ones.dtype:
            ones = self._ones = np.ones(v.shape[0], v.dtype)
        return float(_dot(v, ones))

    def checks(self, v: OutputVerdict, n: int, prefix: str = "") -> list[Check]:
        def failed(mask):
            return () if mask is None else tuple(int(i) for i in np.flatnonzero(mask))

        out = [Check(prefix + "output_finite", "output", v.nonfinite is None, failed=failed(v.nonfinite))]
        if self.probability:
            out.append(Check(prefix + "sums_to_1", "output", v.bad_sum is None,
                             None if v.sums is None else f"{float(np.nanmax(np.abs(v.sums - 1))):.3f} off",
                             self.sum_limit, failed(v.bad_sum)))
            if self.min_conf is not None:
                conf = v.conf
                out.append(Check(prefix + "confidence", "output", v.low_conf is None,
                                 None if conf is None else f"{float(conf.min()):.2f}", self.min_conf,
                                 failed(v.low_conf)))
        return out


class OutputsVerdict:
    """The verdicts of every output, plus the output-side OOD score (kind ``ood``) when it is on."""

    __slots__ = ("parts", "scores", "ood_flagged", "output_flagged", "flagged")

    def __init__(self, parts: list[OutputVerdict], scores=None, ood_flagged=None):
        self.parts, self.scores, self.ood_flagged = parts, scores, ood_flagged
        flagged = None
        for v in parts:
            if v.flagged is not None:
                flagged = v.flagged if flagged is None else flagged | v.flagged
        self.output_flagged = flagged
        if ood_flagged is not None:
            flagged = ood_flagged if flagged is None else flagged | ood_flagged
        self.flagged = flagged


class OutputChecks:
    """Callable: list of outputs (the model's order) -> verdict; one OutputGuard per output.

    ``signal``: (output position, "msp" | "energy", threshold, probabilities?) for the output-side
    OOD check from the manifest's guard section, else None. One output without a signal returns
    that output's OutputVerdict itself (the fast path).
    """

    def __init__(self, names: list[str], guards: list[OutputGuard], signal=None):
        self.names, self.guards, self.signal = list(names), list(guards), signal
        self.single_guard = self.guards[0] if len(guards) == 1 and signal is None else None
        # Several float outputs with nothing but finiteness to check (a detector's boxes and scores):
        # one loop of the kernel's sums, then one shared clean verdict (never modified: like CLEAN_OUTPUT)
        lib = kernel()
        plain = all(g.float_output and not g.probability for g in self.guards)
        self._sum = lib.sum if lib is not None and plain and signal is None and len(guards) > 1 else None
        self._clean = OutputsVerdict([CLEAN_OUTPUT] * len(self.guards))

    def __call__(self, outs: list[np.ndarray]):
        if self.single_guard is not None:
            return self.single_guard(outs[0])
        if self._sum is not None:
            total, f = 0.0, self._sum
            for o in outs:
                total += f(o)  # NaN for an output that is not contiguous float32: the per-output checks
            if _isfinite(total):
                return self._clean
        parts = [g(o) for g, o in zip(self.guards, outs)]
        scores = flagged = None
        if self.signal is not None:
            pos, kind, limit, probs = self.signal
            scores = output_score(outs[pos], kind, probabilities=probs)
            f = scores > limit
            flagged = f if f.any() else None
        return OutputsVerdict(parts, scores, flagged)

    def checks(self, v, n: int) -> list[Check]:
        parts = v.parts if v.parts is not None else [v]
        many = len(self.guards) > 1
        out: list[Check] = []
        for name, g, part in zip(self.names, self.guards, parts):
            out += g.checks(part, n, f"{name}." if many else "")
        if self.signal is not None:
            pos, kind, limit, _ = self.signal
            scores = getattr(v, "scores", None)
            out.append(_soft(f"output_ood ({kind})", np.zeros(n) if scores is None else scores, limit, fmt="{:.3f}"))
        return out


def _any(mask):
    return mask if mask is not None and mask.any() else None
