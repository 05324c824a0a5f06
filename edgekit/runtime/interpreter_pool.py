"""The bare inference step behind EdgeModel: quantize, run an engine session, dequantize.

Models are reached only through the engine (edgekit.engine): its sessions raise InferenceError
for the interpreter's own failures; anything else is a bug and propagates.

A ``Runner`` owns a pool of sessions for one model file. ``run`` takes a free one,
so ``pool_size`` threads run in parallel and further callers wait; with the default
pool of one that is a plain lock. Sessions are never shared between threads at the
same time: TFLite interpreters are not thread-safe.

Example:
    >>> r = Runner(open("digits-int8.tflite", "rb").read(), label="digits-int8.tflite")  # doctest: +SKIP
    >>> r.run([np.zeros((1, 8, 8, 1), np.float32)])[0].shape                             # doctest: +SKIP
    (1, 10)
"""

from __future__ import annotations

import queue
import threading
from typing import Any

import numpy as np

from ..engine.safeload import cache_dir, digest_of, load_session, open_checked, probe_spec, verdict
from ..errors import InferenceError, InputValidationError, ModelLoadError, UsageError
from ..manifest import TensorSpec
from ..quant import Dequantizer, Quantizer
from .layout import Layout, layouts

# Ops that pass a tensor through without changing what it means (walked back to find SOFTMAX).
# Compared upper-cased: TFLite names ops SOFTMAX, ONNX Softmax (and QuantizeLinear, Identity).
_PASS_THROUGH = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "CAST", "SQUEEZE", "QUANTIZELINEAR", "DEQUANTIZELINEAR",
                 "IDENTITY"}


class _Slot:
    __slots__ = ("session", "shape", "run1")

    def __init__(self, session, shape):
        self.session = session
        self.shape = shape  # the input shape the session is currently allocated for
        self.run1 = getattr(session, "run1", None) if len(session.inputs) == 1 else None


def _produced_by_softmax(session, index: int) -> bool:
    producer = {t: op for op in session.ops() for t in op.outputs}
    for _ in range(8):
        op = producer.get(index)
        if op is None:
            return False
        if op.name.upper() == "SOFTMAX":
            return True
        if op.name.upper() not in _PASS_THROUGH or not op.inputs:
            return False
        index = op.inputs[0]
    return False


_softmax_known: dict[str, list[bool]] = {}


def _softmax_outputs(session, data: bytes, outs: list[TensorSpec]) -> list[bool]:
    """Per output: produced by a softmax? Read from the ops once per model file and machine (the
    interpreter's op list costs ms in Python on a large model; ONNX needs a second parse of the graph)."""
    key = f"{digest_of(data).hex()}.softmax-{session.engine.replace(' ', '-')}"
    known = _softmax_known.get(key)
    if known is not None and len(known) == len(outs):
        return known
    path = cache_dir() / key
    try:
        known = [c == "1" for c in path.read_text().strip()]
    except OSError:
        known = None
    if known is not None and len(known) == len(outs):
        _softmax_known[key] = known
        return known
    known = [_produced_by_softmax(session, o.index) for o in outs]
    _softmax_known[key] = known
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join("1" if k else "0" for k in known))
    except OSError:
        pass
    return known


class Runner:
    """A pool of interpreters for one model (any number of inputs and outputs), quantization prepared.

    ``inputs`` and ``outputs`` are in the interpreter's order (not the Keras order: TensorFlow sorts
    signature inputs by name); ``run`` takes one array per input in that order, batch-first, and
    returns batch-first outputs: a tensor batched on another axis, or not at all, is moved to and
    from the model's layout here (layout.py; ``set_layouts`` takes the manifest's evidence).
    ``probe_fill``: calibration-like values per input name for the load probe (safeload.probe_spec);
    ``max_mb``: the memory limit for the model's tensors (safeload.check_memory).
    """

    def __init__(self, data: bytes, *, label: str, num_threads: int | None = None,
                 backend: str | None = None, probe: bool = True, pool_size: int = 1,
                 probe_fill: dict[str, list[float]] | None = None, max_mb: float | None = None,
                 load: dict | None = None):
        if pool_size < 1:
            raise UsageError(f"pool_size must be at least 1, got {pool_size}")
        first = load_session(data, label=label, num_threads=num_threads, backend=backend, probe=probe,
                             fill=probe_fill, max_mb=max_mb, load=load)
        # The bytes are checked and the delegate choice is made: the rest of the pool loads the same way
        # (no second structure check, sha256 or verdict lookup per session).
        sessions = [first] + [open_checked(data, label=label, num_threads=num_threads, backend=first.backend,
                                           delegates=first.default_delegates, load=load)
                              for _ in range(pool_size - 1)]
        ins, outs = first.inputs, first.outputs
        self.label = label
        self.backend = first.backend
        self.first_run_ms = getattr(first, "first_run_ms", None)  # the load's run on zeros (XNNPACK prepared in it)
        self.inputs: list[TensorSpec] = ins
        self.outputs: list[TensorSpec] = outs
        self.input: TensorSpec = ins[0]  # the first input (single-input callers)
        self.sample_shape = tuple(int(d) for d in self.input.sample_shape)
        self.set_layouts(layouts(ins), layouts(outs))
        self._quantizers = [Quantizer(t.scale, t.zero_point, t.dtype) if t.quantized else None for t in ins]
        self._q0 = self._quantizers[0]
        self._in_dtypes = [np.dtype(t.dtype) for t in ins]
        self._deq = [Dequantizer(o.scale, o.zero_point, o.dtype) if o.quantized else None for o in outs]
        self._float_outs = all(d is None and o.dtype == "float32" for d, o in zip(self._deq, outs))
        self.probability = _softmax_outputs(first, data, outs)
        start = tuple(first.current_shapes())
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for session in sessions:
            self._free.put(_Slot(session, start))
        self.pool_size = pool_size
        # New input shapes are probed in a subprocess before any interpreter here is resized to them.
        self._probe = probe
        self._data = data if probe else None
        self._threads = num_threads
        self._fill = probe_fill
        self._load = load
        self._delegates = first.default_delegates
        self._probed = {start}
        self._probe_lock = threading.Lock()

    def set_layouts(self, ins: list[Layout], outs: list[Layout]) -> None:
        """Each input's and output's batch axis (interpreter order); all plain: no moves at all."""
        self.in_layouts, self.out_layouts = ins, outs
        self._moves = None if all(lay.plain for lay in ins) else ins
        self._out_moves = None if all(lay.plain for lay in outs) else outs
        batched = [(t, t.shape[lay.axis]) for t, lay in zip(self.inputs, ins) if lay.axis is not None]
        sizes = {n for _, n in batched}
        if len(sizes) > 1 and not sizes <= {-1, 1}:  # -1 and 1 agree (a dynamic batch, a batch of one)
            shown = ", ".join(f"{t.name} {list(t.shape)}" for t, _ in batched)
            raise ModelLoadError(f"{self.label}: the inputs' batch axes disagree ({shown}); EdgeModel runs every "
                                 "input's samples together: run this model through edgekit.engine.open_model")
        self.fixed_batch = int(batched[0][1]) if batched and batched[0][1] > 0 else None

    @property
    def quant(self) -> tuple[float, int, str] | None:
        """The first input's (scale, zero_point, dtype), None when it is float."""
        return self.quants[0]

    @property
    def quants(self) -> list[tuple[float, int, str] | None]:
        return [(t.scale, t.zero_point, t.dtype) if t.quantized else None for t in self.inputs]

    def run(self, batch, in_qrange=None) -> list[np.ndarray]:
        """float32 batches (one per input, or one array for a single input) -> float32 outputs. Thread-safe.

        ``in_qrange``: per input, the caller proved every value quantizes without saturating (skips the clip).
        """
        return self.run_kept([batch] if isinstance(batch, np.ndarray) else batch, in_qrange)[0]

    def run_one(self, batch: np.ndarray, in_qrange: bool = False):
        """``run_kept`` for a single-input model, without the per-input lists (the hot path):
        (outputs, the quantized input or None, raw outputs)."""
        qz = self._q0
        if qz is not None:
            x = qz(batch, in_qrange)
        else:
            x = batch if batch.dtype == self._in_dtypes[0] else batch.astype(self._in_dtypes[0])
        slot = self._free.get()
        try:
            # the session's one-input call when it is allocated for this shape (no lists, no resize check)
            raw = slot.run1(x) if slot.shape == (x.shape,) and slot.run1 is not None else self._invoke(
                slot, [x], (x.shape,))
        finally:
            self._free.put(slot)
        if self._out_moves is not None:
            raw = self._batch_first(raw, x.shape[0])
        if self._float_outs:  # float32 outputs, fresh copies from the engine: handed over as they are
            return raw, (x if qz is not None else None), raw
        outs = [(r if r.dtype == np.float32 else r.astype(np.float32)) if d is None else d(r)
                for r, d in zip(raw, self._deq)]
        return outs, (x if qz is not None else None), raw

    def run_kept(self, batches: list[np.ndarray], in_qrange=None):
        """``run`` on a list of batches, also returning the model-dtype inputs (quantized ones, else None)
        and the raw outputs: fresh arrays nobody else holds, which the monitor keeps by reference."""
        xs = []
        qs = []
        for i, b in enumerate(batches):
            qz = self._quantizers[i]
            if qz is not None:
                x = qz(b, in_qrange is not None and in_qrange[i])
                qs.append(x)
            else:
                x = b if b.dtype == self._in_dtypes[i] else b.astype(self._in_dtypes[i])
                qs.append(None)
            xs.append(x)
        slot = self._free.get()
        try:
            if self._moves is None:
                raw = self._invoke(slot, xs, tuple(x.shape for x in xs))
            else:
                raw = self._invoke_moved(slot, xs)
        finally:
            self._free.put(slot)
        if self._out_moves is not None:
            raw = self._batch_first(raw, batches[0].shape[0])
        # get_tensor already returned a copy: float32 outputs are handed over as they are.
        outs = [(r if r.dtype == np.float32 else r.astype(np.float32)) if d is None else d(r)
                for r, d in zip(raw, self._deq)]
        return outs, qs, raw

    def _invoke(self, slot: _Slot, xs: list[np.ndarray], shapes: tuple, chunks: bool = True) -> list[np.ndarray]:
        if shapes != slot.shape:
            if chunks and self.fixed_batch is not None and slot.shape is not None and all(
                    s[1:] == o[1:] for s, o in zip(shapes, slot.shape)):
                return self._invoke_in_chunks(slot, xs)
            if shapes not in self._probed:
                self._probe_shapes(shapes)
            self._resize(slot, shapes)
        return slot.session.run(xs)

    def _invoke_moved(self, slot: _Slot, xs: list[np.ndarray]) -> list[np.ndarray]:
        """Batch-first arrays into the model's layout, run (a fixed-batch model chunk by chunk; each
        chunk's outputs batch-first before they are joined)."""
        n, b = xs[0].shape[0], self.fixed_batch
        if b is None or n == b:
            model = [lay.to_model(x) for lay, x in zip(self._moves, xs)]
            return self._invoke(slot, model, tuple(x.shape for x in model), chunks=False)
        if n % b:
            raise InputValidationError(f"{self.label}: the model takes batches of exactly {b}; got {n} samples")
        parts = []
        for start in range(0, n, b):
            model = [lay.to_model(x[start:start + b]) for lay, x in zip(self._moves, xs)]
            out = self._invoke(slot, model, tuple(x.shape for x in model), chunks=False)
            parts.append(out if self._out_moves is None else self._batch_first(out, b))
        return [np.concatenate(cols) for cols in zip(*parts)]

    def _batch_first(self, raw: list[np.ndarray], n: int) -> list[np.ndarray]:
        return [r if r.ndim and r.shape[0] == n and lay.plain else lay.batch_first(r, n)
                for lay, r in zip(self._out_moves, raw)]

    def _probe_shapes(self, shapes: tuple) -> None:
        """Run the crash probe on a shape no interpreter here has run (once per shape; cached on disk)."""
        if not self._probe:
            return
        with self._probe_lock:
            if shapes in self._probed:
                return
            spec = probe_spec(self._threads, [list(s) for s in shapes], self._fill, load=self._load)
            result = verdict(self._data, self.backend, self._delegates, spec=spec)
            if not result.startswith("ok"):
                raise InferenceError(f"{self.label}: refused input shape {[list(s) for s in shapes]} "
                                     f"by the probe: {result}")
            self._probed.add(shapes)

    def _resize(self, slot: _Slot, shapes: tuple) -> None:
        """Resize and allocate; on failure put the session back, so ``slot.shape`` stays the truth."""
        session, old = slot.session, slot.shape
        slot.shape = None  # unknown until the resize succeeds: the next call resizes again
        try:
            session.resize(shapes)
        except InferenceError:
            if old is not None:
                try:
                    session.resize(old)
                    slot.shape = old
                except InferenceError:
                    pass
            raise
        slot.shape = shapes

    def _invoke_in_chunks(self, slot: _Slot, xs: list[np.ndarray]) -> list[np.ndarray]:
        """A fixed-batch model (usually batch 1) fed a different batch: run it chunk by chunk."""
        b, n = self.fixed_batch, xs[0].shape[0]
        if n % b:
            raise InputValidationError(f"{self.label}: the model takes batches of exactly {b}; "
                                       f"got {n} samples")
        run = slot.session.run
        parts = [run([x[start:start + b] for x in xs]) for start in range(0, n, b)]
        return [np.concatenate(cols) for cols in zip(*parts)]

    def describe(self) -> dict[str, Any]:
        be = self.backend
        return {"backend": None if be is None else f"{be.name} {be.version}", "pool_size": self.pool_size,
                "input": self.input.__dict__, "inputs": [t.__dict__ for t in self.inputs],
                "outputs": [o.__dict__ for o in self.outputs]}
