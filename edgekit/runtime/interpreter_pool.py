"""The bare inference step behind EdgeModel: quantize, set_tensor, invoke, get_tensor, dequantize.

A ``Runner`` owns a pool of interpreters for one model file. ``run`` takes a free one,
so ``pool_size`` threads run in parallel and further callers wait; with the default
pool of one that is a plain lock. Interpreters are never shared between threads at the
same time: TFLite interpreters are not thread-safe.

Example:
    >>> r = Runner(open("digits-int8.tflite", "rb").read(), label="digits-int8.tflite")  # doctest: +SKIP
    >>> r.run(np.zeros((1, 8, 8, 1), np.float32))[0].shape                              # doctest: +SKIP
    (1, 10)
"""

from __future__ import annotations

import queue
from typing import Any

import numpy as np

from ..errors import EdgekitError, InferenceError, InputValidationError, UsageError
from ..manifest import TensorSpec, tensor_specs
from .safeload import load_interpreter, open_checked

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


def _dequantizer(spec: TensorSpec):
    """A function raw output -> float32 (None for float outputs); real = scale * (q - zero_point).

    edgekit.quant.dequantize, prepared once per output: this runs on every call."""
    if not spec.quantized:
        return None
    dtype = np.dtype(spec.dtype)
    if dtype.itemsize == 1:
        # 8-bit: a 256-entry table indexed by the raw bytes, one numpy call instead of subtract-and-multiply.
        codes = np.arange(256, dtype=np.uint8).view(dtype).astype(np.float32)
        table = ((codes - np.float32(spec.zero_point)) * np.float32(spec.scale)).astype(np.float32)
        return lambda raw: table[raw.view(np.uint8)]
    scale, zp = np.float32(spec.scale), np.float32(spec.zero_point)
    return lambda raw: (raw.astype(np.float32) - zp) * scale


class Runner:
    """A pool of interpreters for one model, with its quantization parameters prepared."""

    def __init__(self, data: bytes, *, label: str, num_threads: int | None = None,
                 backend: str | None = None, probe: bool = True, pool_size: int = 1):
        if pool_size < 1:
            raise UsageError(f"pool_size must be at least 1, got {pool_size}")
        first = load_interpreter(data, label=label, num_threads=num_threads, backend=backend, probe=probe)
        # The bytes are checked and the delegate choice is made: the rest of the pool loads the same way
        # (no second structure check, sha256 or verdict lookup per interpreter).
        interps = [first] + [open_checked(data, label=label, num_threads=num_threads, backend=first.backend,
                                          delegates=first.edgekit_default_delegates) for _ in range(pool_size - 1)]
        ins, outs = tensor_specs(first)
        if len(ins) != 1:
            raise UsageError(f"{label}: EdgeModel runs single-input models; this one has {len(ins)} inputs")
        self.label = label
        self.backend = getattr(first, "backend", None)
        self.input: TensorSpec = ins[0]
        self.outputs: list[TensorSpec] = outs
        detail = first.get_input_details()[0]
        self.sample_shape = tuple(int(d) for d in self.input.shape[1:])
        self.fixed_batch = int(self.input.shape[0]) if self.input.shape and self.input.shape[0] > 0 else None
        self._in_index = int(detail["index"])
        self._out_index = [int(d["index"]) for d in first.get_output_details()]
        self._q = (self.input.scale, self.input.zero_point, self.input.dtype) if self.input.quantized else None
        self._in_dtype = np.dtype(self.input.dtype)
        if self._q is not None:
            info = np.iinfo(self._in_dtype)
            self._inv_scale = np.float32(1.0 / self.input.scale)
            self._zp = np.float32(self.input.zero_point)
            self._qlo, self._qhi = np.float32(info.min), np.float32(info.max)
        self._deq = [_dequantizer(o) for o in outs]
        self.probability = [_produced_by_softmax(first, i) for i in self._out_index]
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for interp in interps:
            self._free.put(_Slot(interp, tuple(int(d) for d in detail["shape"])))
        self.pool_size = pool_size

    @property
    def quant(self) -> tuple[float, int, str] | None:
        return self._q

    def run(self, batch: np.ndarray, in_qrange: bool = False) -> list[np.ndarray]:
        """float32 batch (N, *sample) -> float32 outputs, each (N, ...). Thread-safe.

        ``in_qrange``: the caller proved every value quantizes without saturating (skips the clip).
        """
        return self.run_kept(batch, in_qrange)[0]

    def run_kept(self, batch: np.ndarray, in_qrange: bool = False):
        """``run``, also returning the quantized input (or None) and the raw outputs: fresh arrays
        nobody else holds, which the monitor keeps by reference instead of copying."""
        if self._q is not None:
            x = self._quantize(batch, in_qrange)
        elif batch.dtype != self._in_dtype:
            x = batch.astype(self._in_dtype)
        else:
            x = batch
        slot = self._free.get()
        try:
            raw = self._invoke(slot, x)
        except EdgekitError:
            raise
        except Exception as err:  # the interpreter raises RuntimeError / ValueError on kernel failures
            text = "; ".join(ln.strip() for ln in str(err).splitlines() if ln.strip())[:200]
            raise InferenceError(f"{self.label}: the interpreter failed: {text}") from None
        finally:
            self._free.put(slot)
        # get_tensor already returned a copy: float32 outputs are handed over as they are.
        outs = [(r if r.dtype == np.float32 else r.astype(np.float32)) if d is None else d(r)
                for r, d in zip(raw, self._deq)]
        return outs, (x if self._q is not None else None), raw

    def _quantize(self, batch: np.ndarray, in_qrange: bool) -> np.ndarray:
        # edgekit.quant.quantize, unrolled on precomputed constants: this runs on every call.
        q = batch * self._inv_scale
        q += self._zp
        np.rint(q, out=q)
        if in_qrange:
            return q.astype(self._in_dtype)
        np.minimum(q, self._qhi, out=q)
        np.maximum(q, self._qlo, out=q)
        with np.errstate(invalid="ignore"):  # unchecked input may hold NaN; its result is discarded
            return q.astype(self._in_dtype)


    def _invoke(self, slot: _Slot, x: np.ndarray) -> list[np.ndarray]:
        interp = slot.interp
        if x.shape != slot.shape:
            if self.fixed_batch is not None and x.shape[1:] == slot.shape[1:]:
                return self._invoke_in_chunks(slot, x)
            interp.resize_tensor_input(self._in_index, list(x.shape))
            interp.allocate_tensors()
            slot.shape = x.shape
        interp.set_tensor(self._in_index, x)
        interp.invoke()
        return [interp.get_tensor(i) for i in self._out_index]

    def _invoke_in_chunks(self, slot: _Slot, x: np.ndarray) -> list[np.ndarray]:
        """A fixed-batch model (usually batch 1) fed a different batch: run it chunk by chunk."""
        b = self.fixed_batch
        if x.shape[0] % b:
            raise InputValidationError(f"{self.label}: the model takes batches of exactly {b}; "
                                       f"got {x.shape[0]} samples")
        parts: list[list[np.ndarray]] = []
        for start in range(0, x.shape[0], b):
            slot.interp.set_tensor(self._in_index, x[start:start + b])
            slot.interp.invoke()
            parts.append([slot.interp.get_tensor(i) for i in self._out_index])
        return [np.concatenate(cols) for cols in zip(*parts)]

    def describe(self) -> dict[str, Any]:
        be = self.backend
        return {"backend": None if be is None else f"{be.name} {be.version}", "pool_size": self.pool_size,
                "input": self.input.__dict__, "outputs": [o.__dict__ for o in self.outputs]}
