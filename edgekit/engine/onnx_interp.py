"""ONNX Runtime at the lowest level: find it, open a model on the CPU provider, run it.

Standalone on purpose (the standard library and numpy, no edgekit imports), like tflite_interp.py:
the profiler pipes this file to devices that have no edgekit (profile/remote_ssh.bundle_source), so
a device opens and times an ONNX model with the same code as this machine. edgekit's typed session
(onnxrt.OnnxSession) creates its InferenceSession here too.

Example:
    >>> be = import_backend()                                    # doctest: +SKIP
    >>> raw = open_raw(be, "digits.onnx", threads=1)             # doctest: +SKIP
    >>> raw.run([x])[0].shape                                    # doctest: +SKIP
    (1, 10)
"""

from __future__ import annotations

import time

try:  # in the package; piped to a device, tflite_interp was bundled in front of this file
    from .tflite_interp import Backend
except ImportError:
    from tflite_interp import Backend  # type: ignore[no-redef]

NAME = "onnxruntime"
# ONNX element type names (NodeArg.type) -> numpy dtype names
DTYPES = {
    "tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
    "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int16)": "int16", "tensor(uint16)": "uint16",
    "tensor(int32)": "int32", "tensor(uint32)": "uint32", "tensor(int64)": "int64", "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}


def import_backend() -> Backend:
    """onnxruntime as a Backend (name, version, module); ImportError when it is not installed."""
    import onnxruntime

    return Backend(NAME, str(onnxruntime.__version__), onnxruntime)


def errors(backend: Backend) -> tuple[type[BaseException], ...]:
    """What ONNX Runtime raises for a bad model or input (its pybind11 classes derive from Exception)."""
    state = backend.module.capi.onnxruntime_pybind11_state
    names = ("Fail", "InvalidArgument", "RuntimeException", "InvalidGraph", "NoSuchFile", "InvalidProtobuf",
             "NotImplemented", "EPFail", "NoModel", "ModelLoaded")
    return (RuntimeError, ValueError) + tuple(c for n in names if (c := getattr(state, n, None)) is not None)


def create_session(backend: Backend, model, threads: int | None = None):
    """An InferenceSession for model bytes or a path, CPU provider, quiet, ``threads`` intra-op threads."""
    opts = backend.module.SessionOptions()
    opts.log_severity_level = 4  # fatal only: edgekit reports failures itself, in one line
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    source = bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else str(model)
    return backend.module.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])


def _detail(arg, index: int) -> dict:
    shape = [d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or ())]
    return {"name": arg.name, "index": index, "shape": shape, "dtype": DTYPES.get(arg.type, "float32"),
            "quantization": (0.0, 0)}


class RawOnnx:
    """One InferenceSession with the raw-session surface the profiler's child uses (tflite_interp.RawSession's):
    ``input_details``, ``set_inputs``, ``invoke`` (the timed call), ``get_outputs``, ``run``."""

    default_delegates = True  # no delegate retry: the CPU provider runs every graph

    def __init__(self, sess, backend: Backend, times: dict):
        self.sess, self.backend, self.times = sess, backend, times
        self.input_details = [_detail(a, i) for i, a in enumerate(sess.get_inputs())]
        self.output_details = [_detail(a, len(self.input_details) + i) for i, a in enumerate(sess.get_outputs())]
        self._names = [d["name"] for d in self.input_details]
        self._feeds: dict = {}
        self._last: list = []

    def set_inputs(self, xs) -> None:
        self._feeds = dict(zip(self._names, xs))

    def invoke(self) -> None:
        self._last = self.sess.run(None, self._feeds)

    def get_outputs(self) -> list:
        return list(self._last)

    def run(self, xs) -> list:
        self.set_inputs(xs)
        self.invoke()
        return self.get_outputs()


def open_raw(backend: Backend, model, *, threads: int | None = None) -> RawOnnx:
    """Create the session (errors of ``errors(backend)`` propagate); ``times["load_ms"]`` is its creation."""
    t0 = time.perf_counter()
    sess = create_session(backend, model, threads)
    t1 = time.perf_counter()
    return RawOnnx(sess, backend, {"load_ms": (t1 - t0) * 1e3, "init_ms": 0.0})
