"""Watching a deployed model: rolling statistics, drift against calibration, shadow comparison.

``Monitor`` keeps ring buffers of the last ``window`` samples: a fixed subset of each
input's values (at most 64 positions per channel, so a 96x96x3 image costs 192 floats;
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
    >>> mon = Monitor(None, (4,), window=8)
    >>> mon.record(np.ones((2, 4), np.float32), np.ones((2, 3), np.float32), None, None, 0.5)
    >>> mon.snapshot()["samples"]
    2
"""

from __future__ import annotations

import math
import queue
import threading
from typing import Any, Callable

import numpy as np

from ..quant import dequantize
from ..calibration_stats import psi
from ..manifest import InputStats

POSITIONS = 64  # values kept per channel and sample for the rolling input statistics
MIN_SAMPLES_FOR_DRIFT = 30


def drift_level(score: float) -> str:
    """The usual PSI reading: under 0.1 stable, up to 0.25 shifting, above that drifted."""
    return "stable" if score < 0.1 else "shifting" if score < 0.25 else "drifted"


class Monitor:
    """Rolling input/output statistics and drift; ``record`` is cheap, ``snapshot`` does the maths."""

    def __init__(self, stats: InputStats | None, sample_shape: tuple[int, ...], *, window: int = 500,
                 output_size: int | None = None, labels: list[str] | None = None,
                 in_quant: tuple[float, int] | None = None, out_quant: tuple[float, int] | None = None):
        self.stats = stats
        self.window = int(window)
        self.channels = stats.channels if stats else (int(sample_shape[-1]) if sample_shape else 1)
        values = math.prod(d for d in sample_shape if d > 0)  # per sample
        positions = max(1, values // self.channels)
        # A strided slice, not an index array: recording then copies a view (no gather).
        self._pos = slice(0, positions, -(-positions // POSITIONS))
        self.keep_outputs = bool(output_size and output_size <= 1024)
        self.in_quant, self.out_quant = in_quant, out_quant
        # Rings are Python lists of per-sample arrays: a list store costs a fraction of a numpy
        # store. An input entry is either float32 values at the kept positions, or the whole
        # quantized sample the runner made (our own array: kept by reference, no copy per call);
        # an output entry is float32, or the raw quantized output (ours too). snapshot() decodes.
        self._x: list = [None] * self.window
        self._out: list = [None] * self.window
        self._ood: list[float] = [math.nan] * self.window
        self._flag: list[bool] = [False] * self.window
        self._lat: list[float] = [0.0] * self.window
        self.labels = labels
        self.samples = 0  # samples seen (OOD scores, flags)
        self.kept = 0  # samples whose values are in the rings (all, or every stride-th for large inputs)
        self.calls = 0
        # Copying values costs a cache-cold numpy call per predict; for large inputs every stride-th
        # single-sample call is plenty for drift statistics (a 96x96x3 image: every 6th).
        self.stride = max(1, min(8, values // 4096))
        self._by_ref = values <= 4096  # whole samples by reference only while small (<= 4 KB int8 each)
        self._lock = threading.Lock()

    def record(self, batch: np.ndarray, out0: np.ndarray | None, ood: np.ndarray | None,
               flagged: np.ndarray | None, latency_ms: float, q: np.ndarray | None = None,
               raw0: np.ndarray | None = None) -> None:
        """Add one call's samples: batch is the float32 model input and out0 the first output; q and raw0,
        when given, are the quantized input and raw output arrays the runtime owns (kept by reference)."""
        n = batch.shape[0]
        with self._lock:
            i = self.samples % self.window
            if n == 1:
                if self.calls % self.stride == 0:  # large inputs: values from every stride-th call
                    k = self.kept % self.window
                    self._x[k] = q[0] if q is not None and self._by_ref else self._subsample(batch)[0]
                    if self.keep_outputs and out0 is not None:
                        self._out[k] = raw0[0] if raw0 is not None else np.array(out0[0], np.float32)
                    self.kept += 1
                self._ood[i] = math.nan if ood is None else float(ood[0])
                self._flag[i] = False if flagged is None else bool(flagged[0])
            else:
                self._record_batch(batch, out0, ood, flagged, n, i)
            self._lat[self.calls % self.window] = latency_ms
            self.samples += n
            self.calls += 1

    def _subsample(self, batch: np.ndarray) -> np.ndarray:
        return np.array(batch.reshape(batch.shape[0], -1, self.channels)[:, self._pos], np.float32)

    def _record_batch(self, batch, out0, ood, flagged, n: int, i: int) -> None:
        start = max(0, n - self.window)  # a batch larger than the window keeps its tail
        xs = self._subsample(batch[start:])
        outs = np.array(out0.reshape(n, -1)[start:], np.float32) if self.keep_outputs and out0 is not None else None
        oods = [math.nan] * n if ood is None else ood.tolist()
        flags = [False] * n if flagged is None else flagged.tolist()
        for j in range(n - start):
            k = (self.kept + j) % self.window
            self._x[k] = xs[j]
            self._out[k] = None if outs is None else outs[j]
            r = (i + start + j) % self.window
            self._ood[r], self._flag[r] = oods[start + j], flags[start + j]
        self.kept += n - start

    def _decode(self, entries: list, quant, positions: bool) -> np.ndarray | None:
        """Stack ring entries as float32; quantized ones (whole samples, by reference) are dequantized
        and, for inputs, cut to the kept positions like the float entries already are."""
        rows = []
        for e in entries:
            if e is None:
                continue
            if e.dtype != np.float32:
                e = dequantize(e, quant[0], quant[1])
                e = e.reshape(-1, self.channels)[self._pos] if positions else e
            rows.append(e if positions else e.reshape(-1))
        return np.stack(rows) if rows else None

    def snapshot(self) -> dict[str, Any]:
        """Rolling statistics over the window, with PSI drift per input channel."""
        with self._lock:
            filled = min(self.samples, self.window)
            kept = min(self.kept, self.window)
            xs, outs = self._x[:kept], self._out[:kept]
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
        snap["latency_ms"] = {"p50": float(np.quantile(lat, 0.5)), "p95": float(np.quantile(lat, 0.95)),
                              "max": float(lat.max())}
        x = self._decode(xs, self.in_quant, positions=True)
        if x is not None:
            snap["input"] = self._input_stats(x)
        out = self._decode(outs, self.out_quant, positions=False)
        if out is not None:
            snap["output"] = self._output_stats(out)
        return snap

    def _input_stats(self, x: np.ndarray) -> dict[str, Any]:
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
        elif bins is None:
            res["drift"] = "unknown (no calibration statistics in the manifest)"
        else:
            res["drift"] = f"unknown (fewer than {MIN_SAMPLES_FOR_DRIFT} samples so far)"
        return res

    def _output_stats(self, out: np.ndarray) -> dict[str, Any]:
        res: dict[str, Any] = {"mean": [round(float(v), 6) for v in out.mean(axis=0)[:64]]}
        if out.shape[1] > 1:
            top = np.bincount(out.argmax(axis=1), minlength=out.shape[1]) / out.shape[0]
            names = self.labels if self.labels and len(self.labels) == out.shape[1] else range(out.shape[1])
            res["top1_share"] = {str(k): round(float(s), 4) for k, s in zip(names, top) if s > 0}
        return res


class Shadow:
    """Runs a sampled share of calls through a reference model off the caller's thread."""

    def __init__(self, reference: Callable[[np.ndarray], np.ndarray], rate: float, *, classifier: bool,
                 tolerance: float = 0.1, max_queue: int = 64):
        if not 0.0 <= rate <= 1.0:
            from ..errors import UsageError

            raise UsageError(f"shadow rate must be between 0 and 1, got {rate}")
        self.reference = reference
        self.rate = float(rate)
        self.classifier = classifier
        self.tolerance = tolerance
        self._credit = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.compared = self.disagreed = self.skipped = self.errors = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def offer(self, batch: np.ndarray, out0: np.ndarray) -> None:
        """Maybe queue this call for comparison (every 1/rate-th call: deterministic, not random)."""
        with self._lock:
            self._credit += self.rate
            if self._credit < 1.0 or self._closed:
                return
            self._credit -= 1.0
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="edgekit-shadow", daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait((batch.copy(), out0.copy()))
        except queue.Full:
            with self._lock:
                self.skipped += batch.shape[0]

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._compare(*item)
            finally:
                self._queue.task_done()

    def _compare(self, batch: np.ndarray, out0: np.ndarray) -> None:
        n = batch.shape[0]
        try:
            ref = np.asarray(self.reference(batch), np.float32).reshape(n, -1)
        except Exception:  # a reference failure is a monitoring fact, never the caller's problem
            with self._lock:
                self.errors += n
            return
        got = out0.reshape(n, -1)
        if self.classifier:
            differ = got.argmax(axis=1) != ref.argmax(axis=1)
        else:
            differ = np.abs(got - ref).max(axis=1) > self.tolerance * (np.abs(ref).max(axis=1) + 1e-6)
        with self._lock:
            self.compared += n
            self.disagreed += int(differ.sum())

    def snapshot(self, wait: bool = False) -> dict[str, Any]:
        if wait and self._thread is not None:
            self._queue.join()
        with self._lock:
            rate = self.disagreed / self.compared if self.compared else None
            return {"rate": self.rate, "compared": self.compared, "disagreed": self.disagreed,
                    "disagreement_rate": rate, "skipped": self.skipped, "errors": self.errors}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            started = self._thread is not None
        if started:
            self._queue.put(None)
            self._thread.join(timeout=10)
