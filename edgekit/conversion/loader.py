"""Load the source model: Keras 3 ``.keras``, legacy ``.h5``, a SavedModel folder, or a float ``.onnx``
(ONNX in, quantized ONNX out; opened through the engine's crash probe, never TensorFlow).

Example:
    >>> src = load_source("model.keras")       # doctest: +SKIP
    >>> src.format, src.keras is not None      # doctest: +SKIP
    ('keras', True)
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SourceModelError
from ..fsutil import sha256_file
from ..manifest import SourceInfo
from .tf import captured, import_keras, import_tf


@dataclass
class Source:
    path: Path
    format: str  # keras | h5 | saved_model | onnx
    keras: Any | None  # the Keras model, when there is one
    saved_model: Any | None = None  # the loaded SavedModel (tf.saved_model.load), loaded once
    onnx: bytes | None = None  # an .onnx source's bytes
    session: Any | None = field(default=None, repr=False)  # an .onnx source's engine session


    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """{input name: shape without the batch axis (-1 = dynamic)}, in the model's input order.

        Keras input names, or the SavedModel serving signature's input keys: the names calibration
        and eval data use (an .npz with one array per name)."""
        if self.keras is not None:
            named = [(t.name, t.shape) for t in self.keras.inputs]
        elif self.session is not None:
            named = [(t.name, t.shape) for t in self.session.inputs]
        else:
            fn = self.saved_model.signatures.get("serving_default")
            named = [(k, t.shape) for k, t in fn.structured_input_signature[1].items()] if fn is not None else []
        return {name: tuple(-1 if d is None else int(d) for d in shape[1:]) for name, shape in named}

    def output_names(self) -> list[str]:
        """Keras output names, or the serving signature's output keys, in the model's order."""
        if self.keras is not None:  # Sequential models have no output_names: their tensors' names then
            return list(getattr(self.keras, "output_names", None) or [t.name for t in self.keras.outputs])
        if self.session is not None:
            return [t.name for t in self.session.outputs]
        fn = self.saved_model.signatures.get("serving_default")
        return list(fn.structured_outputs.keys()) if fn is not None else []

    def input_shape(self) -> tuple[int, ...] | None:
        """The single input's shape without the batch axis, or None for several inputs."""
        shapes = self.input_shapes()
        return next(iter(shapes.values())) if len(shapes) == 1 else None

    @property
    def multi_io(self) -> bool:
        return len(self.input_shapes()) > 1 or len(self.output_names()) > 1

    def fingerprint(self) -> SourceInfo:
        size = (
            sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
            if self.path.is_dir()
            else self.path.stat().st_size
        )
        params = int(self.keras.count_params()) if self.keras is not None else None
        return SourceInfo(path=str(self.path), format=self.format, sha256=sha256_file(self.path),
                          size_bytes=size, params=params)


def _format_of(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "saved_model"
        raise SourceModelError(f"{path}: a folder without saved_model.pb is not a SavedModel")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise SourceModelError(f"{path}: not a valid .keras file (a .keras file is a zip archive); re-save the model")
        return "keras"
    if suffix in (".h5", ".hdf5"):
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                raise SourceModelError(f"{path}: not a valid HDF5 file; re-save the model with model.save('x.h5')")
        return "h5"
    raise SourceModelError(f"{path}: not a model; expected a .keras file, a .h5 file, a SavedModel folder "
                           "or an .onnx file")


def load_source(path: str | Path) -> Source:
    path = Path(path)
    if not path.exists():
        raise SourceModelError(f"{path}: no such file or folder")
    fmt = _format_of(path)
    if fmt == "onnx":
        return _load_onnx(path)
    if fmt == "saved_model":
        tf = import_tf()
        try:
            with captured():
                loaded = tf.saved_model.load(str(path))
        except Exception as err:
            raise SourceModelError(f"{path}: cannot load SavedModel ({_short(err)})") from None
        return Source(path, fmt, None, loaded)
    keras = import_keras()
    try:
        with captured():
            model = keras.models.load_model(path, compile=False)
    except Exception as err:  # Keras raises many kinds for corrupt or foreign files
        if "could not be deserialized" in str(err) or "Unknown layer" in str(err):
            raise SourceModelError(f"{path}: uses a custom layer or object that is not registered; "
                                   "decorate it with @keras.saving.register_keras_serializable() and "
                                   "call edgekit.convert from Python after importing it") from None
        raise SourceModelError(f"{path}: cannot load {fmt} model ({_short(err)})") from None
    return Source(path, fmt, model)


def _load_onnx(path: Path) -> Source:
    """An .onnx source through the engine's door (structure check, crash probe): its bytes and session."""
    from ..engine import open_model
    from ..engine.onnxrt import is_onnx
    from ..errors import ModelLoadError
    from ..fsutil import read_bytes

    data = read_bytes(path, SourceModelError, "ONNX model")
    if not is_onnx(data):  # the engine would pick by the bytes and call it a bad .tflite
        raise SourceModelError(f"{path}: not an ONNX model (no ONNX ModelProto header); check the file")
    try:
        session = open_model(data, label=str(path))
    except ModelLoadError as err:
        raise SourceModelError(str(err)) from None
    return Source(path, "onnx", None, onnx=data, session=session)


def _short(err: Exception) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__
