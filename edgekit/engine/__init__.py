"""The one door to model files: every interpreter call in edgekit happens in this package.

- session.py        the session protocol every engine gives (typed specs, run by name, resize, ops)
- tflite_interp.py  the TFLite interpreter packages at the lowest level (standalone: the profiler's
                    child carries it to devices without edgekit); the XNNPACK retry, written once
- tflite.py         the TFLite engine: package discovery, TFLiteSession, trusted opens
- safeload.py       untrusted bytes: structure check, then a crash probe in a subprocess (_probe.py)
- tflite_file.py, tflite_info.py   reading a .tflite without running it (inspect and check)
- onnxrt.py         the ONNX Runtime engine (OnnxSession; the ``onnx`` extra), picked by the bytes
- onnx_info.py      reading an .onnx without running it (inspect and check; the onnx package)

A test (tests/unit/test_engine_boundary.py) fails when an interpreter API is called anywhere else.

Example:
    >>> from edgekit.engine import open_model
    >>> s = open_model("digits-int8.tflite", threads=1)           # doctest: +SKIP
    >>> s.engine, [t.name for t in s.outputs]                     # doctest: +SKIP
    ('ai-edge-litert 2.3.0', ['scores'])
"""

from __future__ import annotations

from pathlib import Path

from .session import Op, Session


def open_model(model: str | Path | bytes, *, label: str | None = None, threads: int | None = None,
               backend: str | None = None, probe: bool = True,
               fill: dict[str, list[float]] | None = None, load: dict | None = None) -> Session:
    """A session for a model file or its bytes, opened the safe way (structure check, then the crash
    probe in a subprocess unless ``probe=False``; safeload.py). ``fill``: calibration-like values per
    input name for the probe's second run. ``load``: an external delegate by name or path with its
    options, and a signature by name: ``{"delegate": "libedgetpu.so.1", "delegate_options": {"device":
    "usb"}, "signature": "serving_default"}``."""
    from ..errors import ModelLoadError
    from ..fsutil import read_bytes
    from .safeload import load_session

    if isinstance(model, (bytes, bytearray, memoryview)):
        data, label = bytes(model), label or "<bytes>"
    else:
        data, label = read_bytes(model, ModelLoadError, "model file"), label or str(model)
    return load_session(data, label=label, num_threads=threads, backend=backend, probe=probe, fill=fill, load=load)


def model_format(path: str | Path) -> str:
    """"tflite" or "onnx", from the file's first bytes; a one-line ModelLoadError for anything else."""
    from ..errors import ModelLoadError
    from ..fsutil import read_bytes
    from .onnxrt import is_onnx
    from .tflite_file import is_tflite

    head = read_bytes(path, ModelLoadError, "model file", head=8)
    if is_tflite(head):
        return "tflite"
    if is_onnx(head):
        return "onnx"
    raise ModelLoadError(f"{path}: not a TensorFlow Lite model (no 'TFL3' identifier at bytes 4..8), nor an "
                         "ONNX model; convert it with edgekit convert")


def io_specs(path: str | Path):
    """(inputs, outputs) as TensorSpecs without running the model: the .tflite flatbuffer, or an ONNX
    Runtime session's own description (ONNX files)."""
    from ..errors import ModelLoadError
    from ..fsutil import read_bytes

    if model_format(path) == "onnx":
        from .onnxrt import open_onnx

        s = open_onnx(path)
        return list(s.inputs), list(s.outputs)
    from .tflite_file import io_specs as tflite_io

    return tflite_io(read_bytes(path, ModelLoadError, "model file"))


__all__ = ["Op", "Session", "io_specs", "model_format", "open_model"]
