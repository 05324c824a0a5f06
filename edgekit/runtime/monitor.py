"""Watching a deployed model: rolling statistics, drift against calibration, shadow comparison.

``Monitor`` keeps ring buffers of the last ``window`` samples, per input and per output
(keyed by name in ``snapshot()``): a fixed subset of each input's values (at most 64 positions per channel, so a 96x96x3 image costs 192 floats;
for inputs over 8,192 values, from every few calls only), the first output, OOD scores,
flags and call latencies. Nothing heavy runs per call;
``snapshot()`` computes means, quantiles and a PSI drift score per input channel
against the manifest's calibration bins (PSI < 0.1 stable, 0.1-0.25 shifting, > 0.25
drifted).

``Shadow`` sends a sampled share of calls to a reference model (for example the fp32
file next to an int8 model) on a background thread and counts how often the two
disagree (different top-1 for classifiers, a relative difference over 10% otherwise).
The caller never waits for the reference; when its queue is full the sample is skipped
and counted.

Example:
    >>> import numpy as np
    >>> mon = Monitor([("x", None, (4,), None)], [("y", 3, None)], window=8)
    >>> mon.record([np.ones((2, 4), np.float32)], [np.ones((2, 3), np.float32)], None, None, 0.5)
    >>> mon.snapshot()["samples"], sorted(mon.snapshot()["inputs"])
    (2, ['x'])
"""

from __future__ import annotations

import functools
import math
import queue
import threading
from typing import Any, Callable

import numpy as np

from ..quant import dequantize
from ..calibration_stats import psi
from ..manifest import InputStats
from .checks import channels_of

_F32 = np.dtype(np.float32)
POSITIONS = 64  # values kept per channel and sample for the rolling input statistics
MIN_SAMPLES_FOR_DRIFT = 30


def drift_level(score: float) -> str:
    """The usual PSI reading: under 0.1 stable, up to 0.25 shifting, above that drifted."""
    return "stable" if score < 0.1 else "shifting" if score < 0.25 else "drifted"


class Monitor:
    """Rolling input/output statistics and drift; ``record`` is cheap, ``snapshot`` does the maths.

    ``inputs``: per input (name, InputStats or None, sample shape, (scale, zero_point) or None);
    ``outputs``: per output (name, values per sample, (scale, zero_point) or None), model order.
    One stride and one ring position serve every input and output, so their rows line up.
    """

    def __init__(self, inputs: list[tuple], outputs: list[tuple] = (), *, window: int = 500,
                 labels: list[str] | None = None):
        self.window = int(window)
        self.inputs = [_InputRing(*spec, self.window) for spec in inputs]
        self.outputs = [_OutputRing(name, size, quant, self.window) for name, size, quant in outputs]
        self._ood: list[float] = [math.nan] * self.window
        self._flag: list[bool] = [False] * self.window
        self._lat: list[float] = [0.0] * self.window
        self.labels = labels
        self.samples = 0  # samples seen (OOD scores, flags)
        self.kept = 0  # samples whose values are in the rings (all, or every stride-th for large inputs)
        self.calls = 0
        # Copying values costs a cache-cold numpy call per predict; for large inputs every stride-th
        # single-sample call is plenty for drift statistics (a 96x96x3 image: every 6th).
        values = sum(r.values for r in self.inputs)
        self.stride = max(1, min(8, values // 4096))
        # The calls between two kept ones vary (1 to 2*stride-1, stride on average) in a fixed, seeded
        # order: a fixed step aliases with periodic streams (two cameras taking turns and a stride of 8 kept
        # one camera's frames only, and drift on the other was never seen).
        self._gaps = _gaps(self.stride)
        self._gap_i = 0
        self._until = 0  # calls left before the next kept one
        self._lock = threading.Lock()
        # What one sample's record stores, worked out once (record runs on every call; after an ONNX Runtime
        # run its ring methods and loops had cost 4.5 us on the digits CNN). Values are kept as float32
        # bytes: tobytes is one C copy, a third of an array copy's cost (0.75 against 1.9 us for the input
        # and output after an ONNX Runtime run), and a bytes object is smaller. Per input (its position, its
        # ring, the sample's (positions, channels) view shape, the kept rows or None for all of them, whether
        # a quantized sample is kept whole by reference); per kept output (its position, ring, quantized).
        self._in1 = [(j, r._x, r._rows, None if r._all else r._pos, r._by_ref) for j, r in enumerate(self.inputs)]
        self._out1 = [(j, r._out, r.quant is not None) for j, r in enumerate(self.outputs) if r.keep]

    def record(self, batches: list[np.ndarray], outs: list[np.ndarray] | None, ood: np.ndarray | float | None,
               flagged: np.ndarray | None, latency_ms: float, qs: list | None = None,
               raws: list | None = None) -> None:
        """Add one call's samples: the float32 model inputs and outputs (model order), the OOD scores (an
        array, None, or for one sample its float); qs and raws, when given, are the quantized inputs (None
        where float) and raw outputs the runtime owns (kept by reference)."""
        n = batches[0].shape[0]
        with self._lock:
            w = self.window
            i = self.samples % w
            if n == 1:
                until = self._until
                if until == 0:  # large inputs: values from every stride-th call on average
                    until = self._gaps[self._gap_i]
                    self._gap_i = (self._gap_i + 1) % len(self._gaps)
                    k = self.kept % w
                    for j, ring, rows, pos, by_ref in self._in1:  # the kept values' float32 bytes
                        q = None if qs is None else qs[j]
                        if q is not None and by_ref:
                            ring[k] = q[0]
                        else:
                            x = batches[j].reshape(rows)
                            if pos is not None:
                                x = x[pos]
                            ring[k] = x.tobytes() if x.dtype is _F32 else x.astype(_F32).tobytes()
                    if outs is not None:
                        for j, ring, quant in self._out1:  # a raw quantized output by reference, else bytes
                            if quant and raws is not None:
                                ring[k] = raws[j][0]
                            else:
                                x = outs[j][0]
                                ring[k] = x.tobytes() if x.dtype is _F32 else x.astype(_F32).tobytes()
                    self.kept += 1
                self._until = until - 1
                self._ood[i] = ood if type(ood) is float else math.nan if ood is None else float(ood[0])
                self._flag[i] = False if flagged is None else bool(flagged[0])
            else:
                self._record_batch(batches, outs, ood, flagged, n, i)
            self._lat[self.calls % w] = latency_ms
            self.samples += n
            self.calls += 1

    def _record_batch(self, batches, outs, ood, flagged, n: int, i: int) -> None:
        start = max(0, n - self.window)  # a batch larger than the window keeps its tail
        for j, ring in enumerate(self.inputs):
            ring.put_batch(self.kept, batches[j][start:])
        for j, ring in enumerate(self.outputs):
            ring.put_batch(self.kept, None if outs is None else outs[j][start:])
        oods = [math.nan] * n if ood is None else ood.tolist()
        flags = [False] * n if flagged is None else flagged.tolist()
        for j in range(n - start):
            r = (i + start + j) % self.window
            self._ood[r], self._flag[r] = oods[start + j], flags[start + j]
        self.kept += n - start

    def snapshot(self) -> dict[str, Any]:
        """Rolling statistics over the window: per input (PSI drift per channel) and per output, by name.

        ``input`` and ``output`` repeat the first input's and first output's entries."""
        with self._lock:
            filled = min(self.samples, self.window)
            kept = min(self.kept, self.window)
            xs = [ring.entries(kept) for ring in self.inputs]
            outs = [ring.entries(kept) for ring in self.outputs]
            ood = np.array(self._ood[:filled], np.float64)
            flags = np.array(self._flag[:filled], bool)
            lat = np.array(self._lat[: min(self.calls, self.window)], np.float64)
            samples, calls = self.samples, self.calls
        snap: dict[str, Any] = {"calls": calls, "samples": samples, "window": filled}
        if not filled:
            return snap
        snap["flagged_share"] = float(flags.mean())
        if np.isfinite(ood).any():
            snap["ood_score"] = {"mean": float(np.nanmean(ood)), "p95": float(np.nanquantile(ood, 0.95))}
        else:  # no OOD reference (no manifest): say so rather than leave a clean-looking gap
            snap["ood_score"] = "not checked"
        snap["latency_ms"] = {"p50": float(np.quantile(lat, 0.5)), "p95": float(np.quantile(lat, 0.95)),
                              "max": float(lat.max())}
        per_in = {ring.name: ring.summary(e) for ring, e in zip(self.inputs, xs)}
        per_in = {k: v for k, v in per_in.items() if v is not None}
        if per_in:
            snap["inputs"] = per_in
            if self.inputs[0].name in per_in:
                snap["input"] = per_in[self.inputs[0].name]
        per_out = {ring.name: ring.summary(e, self.labels if j == 0 else None)
                   for j, (ring, e) in enumerate(zip(self.outputs, outs))}
        per_out = {k: v for k, v in per_out.items() if v is not None}
        if per_out:
            snap["outputs"] = per_out
            if self.outputs[0].name in per_out:
                snap["output"] = per_out[self.outputs[0].name]
        return snap


@functools.lru_cache(maxsize=None)
def _gaps(stride: int, pairs: int = 127) -> tuple[int, ...]:
    """Calls between kept ones: ``2 * pairs`` values in 1..2*stride-1, in a seeded shuffled order, built as
    pairs (g, 2*stride - g) so their mean is exactly ``stride``; (1,) when every call is kept. The same for
    every monitor of a stride: made once per process (a seeded generator costs ~0.1 ms of each load).

    >>> g = _gaps(8); len(g), min(g) >= 1, max(g) <= 15, sum(g) / len(g)
    (254, True, True, 8.0)
    """
    if stride <= 1:
        return (1,)
    rng = np.random.default_rng(stride)
    half = rng.integers(1, 2 * stride, pairs)
    gaps = np.concatenate([half, 2 * stride - half])
    rng.shuffle(gaps)
    return tuple(int(g) for g in gaps)


def _spread_step(positions: int, sample_shape: tuple[int, ...]) -> int:
    """A step that keeps about POSITIONS of ``positions`` values, spread over rows and columns.

    >>> _spread_step(128 * 128, (128, 128, 3)), _spread_step(64, (8, 8, 1))
    (257, 1)
    """
    step = -(-positions // POSITIONS)
    width = sample_shape[-2] if len(sample_shape) >= 3 and sample_shape[-2] > 1 else 1
    while step > 1 and math.gcd(step, width) != 1:
        step += 1
    return step


def _looks_swapped(x: np.ndarray, bins, scores: list[float]) -> bool:
    """Channels 0 and 2 drifted, and each matches the other's calibration bins: BGR for RGB.

    No single photo shows it (a scene's colours are as plausible swapped: 1-2% of swapped crops of
    scikit-learn's photos stand out one by one); the window's pixels do, against the calibration's.
    """
    if x.shape[-1] != 3 or min(scores[0], scores[2]) < 0.25:
        return False
    swapped = [psi(bins.reference_share[2], bins.edges[2], x[:, :, 0].ravel()),
               psi(bins.reference_share[0], bins.edges[0], x[:, :, 2].ravel())]
    return max(swapped) < 0.25 and max(swapped) < 0.5 * min(scores[0], scores[2])


class _InputRing:
    """One input's values at a fixed subset of positions, as float32 bytes (or the whole quantized sample,
    by reference)."""

    def __init__(self, name: str, stats: InputStats | None, sample_shape: tuple[int, ...],
                 quant: tuple[float, int] | None, window: int):
        self.name, self.stats, self.quant = name, stats, quant
        self.channels = stats.channels if stats else channels_of(sample_shape)
        self.values = math.prod(d for d in sample_shape if d > 0)  # per sample
        positions = max(1, self.values // self.channels)
        # A strided slice, not an index array: recording then copies a view (no gather). The step is
        # coprime with the image width: a step that is a multiple of it keeps one column (a 128x128
        # image's step of 256 kept only the left edge, and clean photos read as drifted).
        self._pos = slice(0, positions, _spread_step(positions, sample_shape))
        self._by_ref = quant is not None and self.values <= 4096  # whole samples only while small
        # one sample's kept values (Monitor.record): rows of its (positions, channels) view, sliced unless all
        self._rows = (-1, self.channels)
        self._all = self._pos == slice(0, positions, 1) and all(d > 0 for d in sample_shape)  # a fixed size
        # Rings are Python lists of per-sample arrays: a list store costs a fraction of a numpy store.
        self._x: list = [None] * window

    def put_batch(self, kept: int, batch: np.ndarray) -> None:
        xs = self._subsample(batch)
        w = len(self._x)
        for j in range(xs.shape[0]):
            self._x[(kept + j) % w] = xs[j].tobytes()

    def _subsample(self, batch: np.ndarray) -> np.ndarray:
        return np.array(batch.reshape(batch.shape[0], -1, self.channels)[:, self._pos], np.float32)

    def entries(self, kept: int) -> list:
        return self._x[:kept]

    def summary(self, entries: list) -> dict[str, Any] | None:
        rows = []
        for e in entries:
            if e is None:
                continue
            if type(e) is bytes:  # the kept values, float32
                e = np.frombuffer(e, np.float32).reshape(-1, self.channels)
            else:  # a whole quantized sample: decode, cut to the kept positions
                e = dequantize(e, self.quant[0], self.quant[1]).reshape(-1, self.channels)[self._pos]
            rows.append(e)
        if not rows:
            return None
        x = np.stack(rows)
        channels = []
        bins = self.stats.bins if self.stats else None
        for c in range(self.channels):
            v = x[:, :, c].ravel()
            ch = {"mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()), "max": float(v.max())}
            if bins is not None and x.shape[0] >= MIN_SAMPLES_FOR_DRIFT:
                ch["psi"] = psi(bins.reference_share[c], bins.edges[c], v)
            channels.append(ch)
        res: dict[str, Any] = {"channels": channels if len(channels) <= 16 else channels[:16]}
        scores = [ch["psi"] for ch in channels if "psi" in ch]
        if scores:
            worst = max(scores)
            res.update(psi_max=worst, psi_worst_channel=int(np.argmax(scores)), drift=drift_level(worst))
            if res["drift"] == "drifted" and _looks_swapped(x, bins, scores):
                res["likely_cause"] = "red and blue swapped (BGR input to an RGB model, or the reverse)"
        elif bins is None:
            res["drift"] = "unknown (no calibration statistics in the manifest)"
        else:
            res["drift"] = f"unknown (fewer than {MIN_SAMPLES_FOR_DRIFT} samples so far)"
        return res


class _OutputRing:
    """One output's values per sample (float32 bytes, or the raw quantized output by reference)."""

    def __init__(self, name: str, size: int | None, quant: tuple[float, int] | None, window: int):
        self.name, self.quant = name, quant
        self.keep = bool(size and size <= 1024)
        self._out: list = [None] * window

    def put_batch(self, kept: int, out: np.ndarray | None) -> None:
        w = len(self._out)
        rows = None if out is None or not self.keep else np.array(out.reshape(out.shape[0], -1), np.float32)
        n = 0 if out is None else out.shape[0]
        for j in range(n):
            self._out[(kept + j) % w] = None if rows is None else rows[j].tobytes()

    def entries(self, kept: int) -> list:
        return self._out[:kept]

    def summary(self, entries: list, labels) -> dict[str, Any] | None:
        rows = [(np.frombuffer(e, np.float32) if type(e) is bytes else dequantize(e, self.quant[0], self.quant[1]))
                .reshape(-1) for e in entries if e is not None]
        if not rows:
            return None
        out = np.stack(rows)
        res: dict[str, Any] = {"mean": [round(float(v), 6) for v in out.mean(axis=0)[:64]]}
        if out.shape[1] > 1:
            top = np.bincount(out.argmax(axis=1), minlength=out.shape[1]) / out.shape[0]
            names = labels if labels and len(labels) == out.shape[1] else range(out.shape[1])
            res["top1_share"] = {str(k): round(float(s), 4) for k, s in zip(names, top) if s > 0}
        return res


class Shadow:
    """Runs a sampled share of calls through a reference model off the caller's thread.

    ``reference``: model input (as offered) -> its outputs (one array or a list, model order).
    Each output is compared with the reference's: top-1 for classifier outputs, a relative
    difference over ``tolerance`` otherwise (NaN or Inf on one side only counts as a difference).
    A sample disagrees when any output does; ``outputs`` in the snapshot counts per output name.
    """

    def __init__(self, reference: Callable[[Any], Any], rate: float, *, classifier, tolerance: float = 0.1,
                 max_queue: int = 64, names: list[str] | None = None):
        if not 0.0 <= rate <= 1.0:
            from ..errors import UsageError

            raise UsageError(f"shadow rate must be between 0 and 1, got {rate}")
        self.reference = reference
        self.rate = float(rate)
        self.classifier = classifier if isinstance(classifier, (list, tuple)) else [classifier]
        self.names = list(names) if names else None
        self.tolerance = tolerance
        self._credit = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.compared = self.disagreed = self.skipped = self.errors = 0
        self.per_output: list[int] = [0] * len(self.classifier)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def offer(self, batch, outs) -> None:
        """Maybe queue this call for comparison (every 1/rate-th call: deterministic, not random).

        ``batch``: what the reference takes; ``outs``: the primary model's own outputs (copied here)."""
        with self._lock:
            self._credit += self.rate
            if self._credit < 1.0 or self._closed:
                return
            self._credit -= 1.0
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="edgekit-shadow", daemon=True)
                self._thread.start()
        item = (_copy(batch), _copy(outs))
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._lock:
                self.skipped += _rows(batch)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._compare(*item)
            finally:
                self._queue.task_done()

    def _compare(self, batch, outs) -> None:
        n = _rows(batch)
        got = outs if isinstance(outs, list) else [outs]
        try:
            ref = self.reference(batch)
            refs = [np.asarray(r, np.float32).reshape(n, -1) for r in (ref if isinstance(ref, list) else [ref])]
        except Exception:  # a reference failure is a monitoring fact, never the caller's problem
            with self._lock:
                self.errors += n
            return
        differ = np.zeros(n, bool)
        counts = []
        for j, (g, r) in enumerate(zip(got, refs)):
            g = g.reshape(n, -1)
            if j < len(self.classifier) and self.classifier[j]:
                d = g.argmax(axis=1) != r.argmax(axis=1)
            else:
                with np.errstate(invalid="ignore"):
                    d = np.abs(g - r).max(axis=1) > self.tolerance * (np.abs(r).max(axis=1) + 1e-6)
                d |= np.isfinite(g).all(axis=1) != np.isfinite(r).all(axis=1)
            counts.append(int(d.sum()))
            differ |= d
        with self._lock:
            self.compared += n
            self.disagreed += int(differ.sum())
            for j, c in enumerate(counts[:len(self.per_output)]):
                self.per_output[j] += c

    def snapshot(self, wait: bool = False) -> dict[str, Any]:
        if wait and self._thread is not None:
            self._queue.join()
        with self._lock:
            rate = self.disagreed / self.compared if self.compared else None
            snap = {"rate": self.rate, "compared": self.compared, "disagreed": self.disagreed,
                    "disagreement_rate": rate, "skipped": self.skipped, "errors": self.errors}
            if self.names and len(self.names) > 1:
                snap["outputs"] = {name: {"disagreed": c, "disagreement_rate": c / self.compared if self.compared
                                          else None} for name, c in zip(self.names, self.per_output)}
            return snap

    def close(self) -> None:
        with self._lock:
            self._closed = True
            started = self._thread is not None
        if started:
            self._queue.put(None)
            self._thread.join(timeout=10)


def _copy(x):
    if isinstance(x, dict):
        return {k: np.array(v) for k, v in x.items()}
    if isinstance(x, list):
        return [np.array(v) for v in x]
    return np.array(x)


def _rows(x) -> int:
    if isinstance(x, dict):
        x = next(iter(x.values()))
    elif isinstance(x, list):
        x = x[0]
    return int(x.shape[0])
