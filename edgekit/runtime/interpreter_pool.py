"""The bare inference step behind EdgeModel: quantize, set_tensor, invoke, get_tensor, dequantize.

Only the interpreter's own errors (RuntimeError, ValueError from set_tensor, invoke,
get_tensor, resize, allocate) become InferenceError; anything else is a bug and propagates.

A ``Runner`` owns a pool of interpreters for one model file. ``run`` takes a free one,
so ``pool_size`` threads run in parallel and further callers wait; with the default
pool of one that is a plain lock. Interpreters are never shared between threads at the
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

from ..errors import InferenceError, InputValidationError, UsageError
from ..manifest import TensorSpec, tensor_specs
from ..quant import Dequantizer, Quantizer
from .safeload import load_interpreter, open_checked, probe_spec, verdict

# Ops that pass a tensor through without changing what it means (walked back to find SOFTMAX).
_PASS_THROUGH = {"QUANTIZE", "DEQUANTIZE", "RESHAPE", "CAST", "SQUEEZE"}


class _Slot:
    __slots__ = ("interp", "shape")

    def __init__(self, interp, shape):
        self.interp = interp
        self.shape = shape  # the input shape the interpreter is currently allocated for


def _produced_by_softmax(interp, index: int) -> bool:
    try:
        ops = [op for op in interp._get_ops_details() if op["op_name"] != "DELEGATE"]
    except Exception:  # private API: absent in some builds, then the caller decides without it
        return False
    producer = {int(t): op for op in ops for t in op["outputs"]}
    for _ in range(8):
        op = producer.get(index)
        if op is None:
            return False
        if op["op_name"] == "SOFTMAX":
            return True
        if op["op_name"] not in _PASS_THROUGH or not len(op["inputs"]):
            return False
        index = int(op["inputs"][0])
    return False


_INTERPRETER_ERRORS = (RuntimeError, ValueError)  # what TFLite interpreters raise; anything else is a bug


def _interpreter_failed(label: str, err: Exception) -> InferenceError:
    text = "; ".join(ln.strip() for ln in str(err).splitlines() if ln.strip())[:200]
    return InferenceError(f"{label}: the interpreter failed: {text}")


class Runner:
    """A pool of interpreters for one model (any number of inputs and outputs), quantization prepared.

    ``inputs`` and ``outputs`` are in the interpreter's order (not the Keras order: TensorFlow sorts
    signature inputs by name); ``run`` takes one array per input in that order.
    ``probe_fill``: calibration-like values per input name for the load probe (safeload.probe_spec);
    ``max_mb``: the memory limit for the model's tensors (safeload.check_memory).
    """

    def __init__(self, data: bytes, *, label: str, num_threads: int | None = None,
                 backend: str | None = None, probe: bool = True, pool_size: int = 1,
                 probe_fill: dict[str, list[float]] | None = None, max_mb: float | None = None):
        if pool_size < 1:
            raise UsageError(f"pool_size must be at least 1, got {pool_size}")
        first = load_interpreter(data, label=label, num_threads=num_threads, backend=backend, probe=probe,
                                 fill=probe_fill, max_mb=max_mb)
        # The bytes are checked and the delegate choice is made: the rest of the pool loads the same way
        # (no second structure check, sha256 or verdict lookup per interpreter).
        interps = [first] + [open_checked(data, label=label, num_threads=num_threads, backend=first.backend,
                                          delegates=first.edgekit_default_delegates) for _ in range(pool_size - 1)]
        ins, outs = tensor_specs(first)
        self.label = label
        self.backend = getattr(first, "backend", None)
        self.inputs: list[TensorSpec] = ins
        self.outputs: list[TensorSpec] = outs
        self.input: TensorSpec = ins[0]  # the first input (single-input callers)
        self.sample_shape = tuple(int(d) for d in self.input.shape[1:])
        self.fixed_batch = int(self.input.shape[0]) if self.input.shape and self.input.shape[0] > 0 else None
        self._in_index = [t.index for t in ins]
        self._out_index = [t.index for t in outs]
        self._quantizers = [Quantizer(t.scale, t.zero_point, t.dtype) if t.quantized else None for t in ins]
        self._q0 = self._quantizers[0]
        self._in_dtypes = [np.dtype(t.dtype) for t in ins]
        self._deq = [Dequantizer(o.scale, o.zero_point, o.dtype) if o.quantized else None for o in outs]
        self.probability = [_produced_by_softmax(first, i) for i in self._out_index]
        by_index = {int(d["index"]): tuple(int(v) for v in d["shape"]) for d in first.get_input_details()}
        start = tuple(by_index[i] for i in self._in_index)
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for interp in interps:
            self._free.put(_Slot(interp, start))
        self.pool_size = pool_size
        # New input shapes are probed in a subprocess before any interpreter here is resized to them.
        self._probe = probe
        self._data = data if probe else None
        self._threads = num_threads
        self._fill = probe_fill
        self._delegates = bool(getattr(first, "edgekit_default_delegates", True))
        self._probed = {start}
        self._probe_lock = threading.Lock()

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
            raw = self._invoke(slot, [x], (x.shape,))
        finally:
            self._free.put(slot)
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
            raw = self._invoke(slot, xs, tuple(x.shape for x in xs))
        finally:
            self._free.put(slot)
        # get_tensor already returned a copy: float32 outputs are handed over as they are.
        outs = [(r if r.dtype == np.float32 else r.astype(np.float32)) if d is None else d(r)
                for r, d in zip(raw, self._deq)]
        return outs, qs, raw

    def _invoke(self, slot: _Slot, xs: list[np.ndarray], shapes: tuple) -> list[np.ndarray]:
        interp = slot.interp
        if shapes != slot.shape:
            if self.fixed_batch is not None and slot.shape is not None and all(
                    s[1:] == o[1:] for s, o in zip(shapes, slot.shape)):
                return self._invoke_in_chunks(slot, xs)
            if shapes not in self._probed:
                self._probe_shapes(shapes)
            self._resize(slot, shapes)
        # Only the interpreter's own calls are inside the try: a bug in edgekit is not an inference error.
        try:
            for i, x in zip(self._in_index, xs):
                interp.set_tensor(i, x)
            interp.invoke()
            return [interp.get_tensor(i) for i in self._out_index]
        except _INTERPRETER_ERRORS as err:
            raise _interpreter_failed(self.label, err) from None

    def _probe_shapes(self, shapes: tuple) -> None:
        """Run the crash probe on a shape no interpreter here has run (once per shape; cached on disk)."""
        if not self._probe:
            return
        with self._probe_lock:
            if shapes in self._probed:
                return
            spec = probe_spec(self._threads, [list(s) for s in shapes], self._fill)
            result = verdict(self._data, self.backend, self._delegates, spec=spec)
            if not result.startswith("ok"):
                raise InferenceError(f"{self.label}: refused input shape {[list(s) for s in shapes]} "
                                     f"by the probe: {result}")
            self._probed.add(shapes)

    def _resize(self, slot: _Slot, shapes: tuple) -> None:
        """Resize and allocate; on failure put the interpreter back, so ``slot.shape`` stays the truth."""
        interp, old = slot.interp, slot.shape
        slot.shape = None  # unknown until allocate_tensors succeeds: the next call resizes again
        try:
            for i, s, o in zip(self._in_index, shapes, old or [None] * len(shapes)):
                if s != o:
                    interp.resize_tensor_input(i, list(s))
            interp.allocate_tensors()
        except _INTERPRETER_ERRORS as err:
            if old is not None:
                try:
                    for i, o in zip(self._in_index, old):
                        interp.resize_tensor_input(i, list(o))
                    interp.allocate_tensors()
                    slot.shape = old
                except _INTERPRETER_ERRORS:
                    pass
            raise _interpreter_failed(self.label, err) from None
        slot.shape = shapes

    def _invoke_in_chunks(self, slot: _Slot, xs: list[np.ndarray]) -> list[np.ndarray]:
        """A fixed-batch model (usually batch 1) fed a different batch: run it chunk by chunk."""
        b, n = self.fixed_batch, xs[0].shape[0]
        if n % b:
            raise InputValidationError(f"{self.label}: the model takes batches of exactly {b}; "
                                       f"got {n} samples")
        interp = slot.interp
        parts: list[list[np.ndarray]] = []
        try:
            for start in range(0, n, b):
                for i, x in zip(self._in_index, xs):
                    interp.set_tensor(i, x[start:start + b])
                interp.invoke()
                parts.append([interp.get_tensor(i) for i in self._out_index])
        except _INTERPRETER_ERRORS as err:
            raise _interpreter_failed(self.label, err) from None
        return [np.concatenate(cols) for cols in zip(*parts)]

    def describe(self) -> dict[str, Any]:
        be = self.backend
        return {"backend": None if be is None else f"{be.name} {be.version}", "pool_size": self.pool_size,
                "input": self.input.__dict__, "inputs": [t.__dict__ for t in self.inputs],
                "outputs": [o.__dict__ for o in self.outputs]}
