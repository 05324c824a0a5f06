"""Keras -> ONNX (issue 16 step 4): Keras 3's ``model.export(path, format="onnx")``, which runs tf2onnx.

fp32 only for now: ONNX quantization (onnxruntime.quantization) is step 3. The bytes are checked
like a .tflite's: the caller runs them through the ONNX Runtime session against the Keras source.

Example:
    >>> data = to_onnx(load_source("digits.keras"))      # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..engine.onnxrt import get_backend
from ..errors import ConversionError, MissingDependencyError, UsageError
from ..recipes import Recipe
from .loader import Source
from .tf import captured

SUFFIX = ".onnx"


def is_onnx_output(path: Path) -> bool:
    return path.suffix.lower() == SUFFIX


def check_onnx_options(source: Source, recipe: Recipe, **options) -> None:
    """What ONNX output does not take yet, refused before any work starts (validate-first).

    ``options``: the convert arguments that only the TFLite path has, by name (truthy = asked for)."""
    if recipe.name != "fp32":
        raise UsageError(f"ONNX output takes recipe fp32 for now, not {recipe.name!r}; write a .tflite for "
                         f"{recipe.name!r}")
    asked = [name for name, value in options.items() if value]
    if asked:
        raise UsageError(f"ONNX output does not take --{asked[0].replace('_', '-')} yet; write a .tflite for it")
    if source.keras is None:
        raise UsageError("ONNX output needs a Keras source (.keras or .h5), not a SavedModel")
    _tf2onnx()
    get_backend()  # the accuracy check runs the file on ONNX Runtime: say what is missing before exporting


def _tf2onnx() -> None:
    try:
        import tf2onnx  # noqa: F401  (Keras imports it inside export)
    except ImportError:
        raise MissingDependencyError("ONNX export needs tf2onnx; pip install tf2onnx") from None


def _build(source: Source) -> None:
    """Call the model once on zeros: a loaded .keras is "never called" and Keras refuses to export it."""
    import numpy as np

    xs = [np.zeros((1,) + tuple(d if d > 0 else 1 for d in shape), np.float32)  # shapes without the batch
          for shape in source.input_shapes().values()]
    source.keras(xs[0] if len(xs) == 1 else xs)


def to_onnx(source: Source) -> bytes:
    """The ONNX bytes of a Keras source; a failed export becomes ConversionError."""
    _tf2onnx()
    with tempfile.TemporaryDirectory(prefix="edgekit-onnx-") as workdir:
        path = Path(workdir) / "model.onnx"
        try:
            with captured():  # tf2onnx prints its progress and TensorFlow's warnings
                _build(source)
                source.keras.export(str(path), format="onnx")
        except Exception as err:  # tf2onnx raises whatever its graph rewriting hits
            text = " ".join(str(err).split())[:240]
            raise ConversionError(f"ONNX export failed: {type(err).__name__}: {text}") from None
        return path.read_bytes()
