"""The ONNX Runtime engine: OnnxSession behind the same session protocol as TFLiteSession.

The only file in edgekit that calls ONNX Runtime. ``onnxruntime`` is imported lazily (it is the
``onnx`` extra: wheels for Python 3.11+ on x86_64 and aarch64, none for armv7l), so edgekit
without it still imports; opening an ONNX file there says what to install in one line.

Differences from TFLite that the protocol hides: ONNX Runtime takes any input shape on every run
(``resize`` only records the shape), it has no tensor indices (each value name gets one: the
inputs first, then the outputs, then the other values in node order) and its models are float or
QDQ (quantize/dequantize nodes inside the graph), so every input and output spec has
scale/zero_point None and EdgeModel feeds the model's own dtypes.

Example:
    >>> from edgekit.engine.onnxrt import open_onnx
    >>> s = open_onnx("digits.onnx", threads=1)           # doctest: +SKIP
    >>> s.engine, [t.name for t in s.inputs]              # doctest: +SKIP
    ('onnxruntime 1.32.0', ['image'])
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

from ..errors import InferenceError, MissingDependencyError, ModelLoadError, UsageError
from ..fsutil import read_bytes
from ..manifest import TensorSpec, batch_axis_of
from . import onnx_interp
from .onnx_interp import DTYPES as _DTYPES
from .onnx_interp import NAME
from .session import Feeds, Op
from .tflite_interp import Backend

INSTALL_HINT = "pip install edgekit[onnx] (ONNX Runtime has wheels for Python 3.11+ on x86_64 and aarch64 only)"
_backend: list[Backend] = []


def is_onnx(data: bytes) -> bool:
    """A cheap content check: an ONNX ModelProto starts with field 1 (ir_version, a small varint),
    then one of fields 2-8 (producer, domain, model version, doc, graph, opset). A .tflite starts
    with its root offset and has ``TFL3`` at bytes 4-8."""
    return (len(data) >= 4 and data[0] == 0x08 and 1 <= data[1] <= 64
            and data[2] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42) and data[4:8] != b"TFL3")


def is_onnx_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".onnx"


def get_backend() -> Backend:
    """The onnxruntime package as a Backend (name, version, module); MissingDependencyError without it."""
    if not _backend:
        try:
            import onnxruntime
        except ImportError:
            raise MissingDependencyError(f"ONNX Runtime is not installed; {INSTALL_HINT}") from None
        _backend.append(Backend(NAME, str(onnxruntime.__version__), onnxruntime))
    return _backend[0]


def _errors(be: Backend) -> tuple[type[BaseException], ...]:
    return onnx_interp.errors(be)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:240] or type(err).__name__


def _spec(arg, index: int) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or ()))
    return TensorSpec(name=arg.name, index=index, shape=shape, dtype=_DTYPES.get(arg.type, "float32"),
                      batch_axis=batch_axis_of(shape))


class OnnxSession:
    """One onnxruntime.InferenceSession behind the session protocol (engine/session.py)."""

    default_delegates = True  # no delegate retry on ONNX Runtime: the CPU provider runs every graph
    first_run_ms = None  # the load's run on zeros (open_onnx(check_run=True)), when it made one

    def __init__(self, sess, be: Backend, label: str, data: bytes):
        self.sess, self.backend, self.label = sess, be, label
        self.engine = f"{be.name} {be.version}"
        self._data = data  # for ops(): the session API does not expose the graph
        self._errors = _errors(be)
        self.inputs = [_spec(a, i) for i, a in enumerate(sess.get_inputs())]
        self.outputs = [_spec(a, len(self.inputs) + i) for i, a in enumerate(sess.get_outputs())]
        self._names = [t.name for t in self.inputs]
        self._out_names = [t.name for t in self.outputs]
        # A dynamic dimension reads as 1 until resized, as on TFLite.
        self._shapes = [tuple(d if d >= 0 else 1 for d in t.shape) for t in self.inputs]
        self._feeds: dict[str, Any] = {}
        self._last: list[Any] = []
        self._ops: list[Op] | None = None
        # run1's call: the binding's own run, skipping InferenceSession.run's per-call Python checks
        # (feed names, which run1 fixes; WebGPU graph capture and OrtValue ownership, which do not
        # apply to numpy input on the CPU provider): ~1.4 us of a 20 us call on the digits CNN.
        # Private API: when a version lacks it, or it refuses the call, the public run is used.
        inner = getattr(sess, "_sess", None)
        self._run_fast = getattr(inner, "run", None)
        # Faster still (another ~0.6 us, in a loop): an I/O binding, its outputs bound by name (ONNX Runtime
        # allocates them, any shape) and the input array bound on each call (no copy of a contiguous array:
        # it is read in place). Private too; None: run1 uses the call above.
        self._bound = self._io_binding(inner)

    def _io_binding(self, inner):
        """(bind the input, run, copy the outputs out) as ONNX Runtime's own functions, or None."""
        try:
            binding = self.sess.io_binding()
            for name in self._out_names:
                binding.bind_output(name, "cpu")  # the public call (it makes the device): allocated on each run
            bound = binding._iobinding
            return bound.bind_input, functools.partial(inner.run_with_iobinding, bound, None), bound.copy_outputs_to_cpu
        except Exception:  # noqa: BLE001 - any version difference: the plain call serves
            return None

    def _feed(self, feeds: Feeds) -> dict[str, Any]:
        if not isinstance(feeds, dict):
            if len(feeds) != len(self.inputs):
                raise UsageError(f"{self.label}: {len(feeds)} input array(s) for {len(self.inputs)} input(s)")
            return dict(zip(self._names, feeds))
        unknown = [n for n in feeds if n not in self._names]
        if unknown:
            raise UsageError(f"{self.label}: no input named {unknown[0]!r}; it has {', '.join(self._names)}")
        missing = [n for n in self._names if n not in feeds]
        if missing:
            raise UsageError(f"{self.label}: no data for input(s) {', '.join(missing)}")
        return dict(feeds)

    # Only ONNX Runtime's own call is inside the try: a bug in edgekit is not an inference error.
    def run(self, feeds: Feeds) -> list[Any]:
        fed = self._feed(feeds)
        try:
            return self.sess.run(self._out_names, fed)
        except self._errors as err:
            raise InferenceError(f"{self.label}: ONNX Runtime failed: {_one_line(err)}") from None

    def run1(self, x) -> list[Any]:
        """``run`` for a one-input model: the array, no list (the guarded runtime's per-call path)."""
        fast = self._run_fast
        try:
            bound = self._bound
            if bound is not None:  # a non-contiguous array is bound as run() takes it (tests/onnx: equal outputs)
                bind, run, outputs = bound
                try:
                    bind(self._names[0], x)
                except TypeError:  # the private call's signature changed: the plain one from now on
                    self._bound = None
                else:
                    run()
                    return outputs()
            if fast is not None:
                try:
                    return fast(self._out_names, {self._names[0]: x}, None)
                except TypeError:  # the private call's signature changed: the public one from now on
                    self._run_fast = None
            return self.sess.run(self._out_names, {self._names[0]: x})
        except self._errors as err:
            raise InferenceError(f"{self.label}: ONNX Runtime failed: {_one_line(err)}") from None

    def set_inputs(self, feeds: Feeds) -> None:
        self._feeds = self._feed(feeds)

    def invoke(self) -> None:
        self._last = self.run(self._feeds)

    def get_outputs(self) -> list[Any]:
        return [x.copy() for x in self._last]

    def resize(self, shapes: Sequence[Sequence[int]]) -> None:
        """ONNX Runtime takes any shape on each run: only record it (a wrong one fails on run)."""
        if len(shapes) != len(self.inputs):
            raise InferenceError(f"{self.label}: {len(shapes)} shape(s) for {len(self.inputs)} input(s)")
        self._shapes = [tuple(int(d) for d in s) for s in shapes]

    def current_shapes(self) -> list[tuple[int, ...]]:
        return list(self._shapes)

    def ops(self) -> list[Op]:
        """The graph's nodes (op types such as Conv, Softmax) with value names numbered as in the specs.

        Read with the ``onnx`` package (the same extra), once; [] where only onnxruntime is installed."""
        if self._ops is None:
            self._ops = self._read_ops()
        return self._ops

    def _read_ops(self) -> list[Op]:
        try:
            import onnx
        except ImportError:
            return []
        graph = onnx.load_from_string(self._data).graph
        index = {n: i for i, n in enumerate(self._names + self._out_names)}

        def ids(names) -> tuple[int, ...]:
            return tuple(index.setdefault(n, len(index)) for n in names if n)

        return [Op(node.op_type, ids(node.input), ids(node.output)) for node in graph.node]

    def close(self) -> None:
        self.sess = None

    def __enter__(self) -> "OnnxSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _guessed_shapes(session: OnnxSession) -> bool:
    """True when an input has a dynamic dimension besides the batch: its zeros run (at 1) is a guess.

    Silero VAD takes audio of any length (input [None, None]): 1 sample fails its STFT padding."""
    return any(d < 0 for t in session.inputs for d in t.shape[1:])


def open_onnx(model: str | Path | bytes, *, threads: int | None = None, check_run: bool = False,
              label: str | None = None) -> OnnxSession:
    """An ONNX Runtime session on the CPU provider; failures become one ModelLoadError.

    ``check_run``: run once on zeros (dynamic dimensions as 1), as the load probe does."""
    be = get_backend()
    if threads is not None and threads < 1:
        raise UsageError(f"num_threads must be at least 1, got {threads}")
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, label = bytes(model), label or "<bytes>"
    else:
        data, label = read_bytes(model, ModelLoadError, "model file"), label or str(model)
    errors = _errors(be)
    try:
        sess = onnx_interp.create_session(be, data, threads)
    except errors as err:
        raise ModelLoadError(f"{label}: onnxruntime cannot load this model: {_one_line(err)}") from None
    session = OnnxSession(sess, be, label, data)
    if check_run:
        import time

        import numpy as np

        try:
            t0 = time.perf_counter()
            session.run([np.zeros(s, t.dtype) for t, s in zip(session.inputs, session.current_shapes())])
            session.first_run_ms = (time.perf_counter() - t0) * 1e3
        except InferenceError as err:
            if _guessed_shapes(session):  # zeros of a guessed size say nothing about the model; a crash
                return session           # would still have killed the probe process, which is the point
            raise ModelLoadError(f"{label}: the model fails on a first run with zero input: "
                                 f"{str(err).split(': ', 1)[-1]}") from None
    return session


__all__ = ["INSTALL_HINT", "NAME", "OnnxSession", "get_backend", "is_onnx", "is_onnx_path", "open_onnx"]
