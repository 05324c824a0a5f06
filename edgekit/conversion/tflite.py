"""Run the TensorFlow Lite converter with a recipe: the one module that builds and configures a converter.

debug.py (the quantization debugger, int8 with layers kept in float) builds on ``make_converter``
and ``configure`` here; this module never imports it (the pipeline picks which one to call).

Example:
    >>> data = to_tflite(source, load_recipe("int8"), calibration=x_calib)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from typing import Iterator

import numpy as np

from ..errors import ConversionError, DataError, UsageError
from ..progress import Progress
from ..recipes import Recipe
from .loader import Source
from .tf import captured, import_tf

COMPAT_TARGETS = ("tflite-runtime-2.14",)

def make_converter(tf, source: Source, workdir: str | None, batch_size: int | None = None):
    """A TFLiteConverter for the source (Keras model, multi-I/O Keras re-exported, or SavedModel).

    ``batch_size``: a fixed batch in the input shapes (static shapes for the Edge TPU and
    microcontrollers); the Keras model is then exported with that input signature."""
    if source.keras is None:
        if batch_size is not None:
            raise UsageError(f"{source.path}: --batch-size needs a Keras source (.keras or .h5); a SavedModel's "
                             "signature is fixed when it is saved: save it with the batch you want")
        return tf.lite.TFLiteConverter.from_saved_model(str(source.path))
    if not source.multi_io and batch_size is None:
        return tf.lite.TFLiteConverter.from_keras_model(source.keras)
    # Several inputs or outputs: from_keras_model names outputs output_0, output_1 (and fails on dict
    # I/O in TF 2.21), so the model is re-wrapped with named dict I/O and exported: the serving
    # signature then carries the Keras input and output names, which the manifest and the runtime use.
    # A fixed batch also goes through export: from_keras_model keeps Keras' None batch.
    import keras

    m = source.keras
    model = m
    if source.multi_io:
        model = keras.Model({t.name: t for t in m.inputs}, dict(zip(m.output_names, m.outputs)))
    model.export(workdir, verbose=False, input_signature=_fixed_batch(tf, m, source.multi_io, batch_size))
    return tf.lite.TFLiteConverter.from_saved_model(workdir)


def _fixed_batch(tf, model, named: bool, batch_size: int | None):
    """The export's input signature with ``batch_size`` as the first dimension (None: Keras' own)."""
    if batch_size is None:
        return None
    specs = {t.name: tf.TensorSpec([batch_size, *t.shape[1:]], t.dtype, name=t.name) for t in model.inputs}
    return [specs] if named else list(specs.values())


def _representative(x: np.ndarray | dict[str, np.ndarray], quiet: bool, stream) -> Iterator:
    """One calibration sample at a time: a list for one input, a dict by signature name for several."""
    n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
    with Progress("calibrating", total=n, enabled=False if quiet else None, stream=stream) as bar:
        for i in range(n):
            bar.advance()
            yield {k: v[i : i + 1] for k, v in x.items()} if isinstance(x, dict) else [x[i : i + 1]]


def configure(tf, conv, recipe: Recipe, calibration, *, sparse: bool,
              compat: str | None, select_tf_ops: bool, quiet: bool, progress_stream=None) -> None:
    """Apply a recipe (and edgekit's extra switches) to a TFLiteConverter."""
    opts = [getattr(tf.lite.Optimize, o) for o in recipe.optimizations]
    if sparse or recipe.sparsity_optimization:
        opts.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    conv.optimizations = opts
    if recipe.supported_types:
        conv.target_spec.supported_types = [getattr(tf, t) for t in recipe.supported_types]
    ops = [getattr(tf.lite.OpsSet, o) for o in recipe.supported_ops]
    if select_tf_ops:
        ops = (ops or [tf.lite.OpsSet.TFLITE_BUILTINS]) + [tf.lite.OpsSet.SELECT_TF_OPS]
    if ops:
        conv.target_spec.supported_ops = ops
    if recipe.inference_input_type != "float32":
        conv.inference_input_type = getattr(tf, recipe.inference_input_type)
    if recipe.inference_output_type != "float32":
        conv.inference_output_type = getattr(tf, recipe.inference_output_type)
    if recipe.requires_calibration:
        if calibration is None:
            raise DataError(f"recipe {recipe.name!r} quantizes activations and needs --calibration data "
                            "(100-500 typical inputs as .npy/.npz or an image folder)")
        conv.representative_dataset = lambda: _representative(calibration, quiet, progress_stream)
    if compat is not None:  # the only target, COMPAT_TARGETS[0]; convert() validates the name
        # tflite-runtime 2.14 knows FULLY_CONNECTED up to version 11; TF 2.21 writes version 12
        # for per-channel dense quantization. Per-tensor dense quantization stays loadable there.
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True


_OP_PATTERNS = (
    re.compile(r"'(tf\.[A-Za-z0-9_]+)' op is neither a custom op nor a flex op"),
    re.compile(r"\b(tf\.[A-Za-z0-9_]+)\b.*(?:not supported|legalize|neither)"),
    re.compile(r"failed to legalize operation '(tf\.[A-Za-z0-9_]+)'"),
)


def _unsupported_ops(text: str) -> list[str]:
    found: list[str] = []
    for pat in _OP_PATTERNS:
        for m in pat.finditer(text):
            if m.group(1) not in found:
                found.append(m.group(1))
    return found


def to_tflite(source: Source, recipe: Recipe, calibration=None, *,
              sparse: bool = False, compat: str | None = None, select_tf_ops: bool = False,
              quiet: bool = False, batch_size: int | None = None) -> bytes:
    """Convert and return the .tflite bytes; converter failures become ConversionError.

    ``calibration``: an array (one input) or {input name: array} (several), for recipes that need it.
    Layers kept in float (a denylist) go through debug.quantize_with_denylist instead.
    """
    tf = import_tf()
    with tempfile.TemporaryDirectory(prefix="edgekit-export-") as workdir:
        with captured():
            conv = make_converter(tf, source, workdir, batch_size)
        return _run(tf, conv, recipe, calibration, sparse=sparse, compat=compat, select_tf_ops=select_tf_ops,
                    quiet=quiet)


def _run(tf, conv, recipe: Recipe, calibration, *, sparse, compat, select_tf_ops, quiet) -> bytes:
    # the converter runs with fd 2 captured: the progress bar draws on a copy of the real stderr,
    # closed whatever happens (configure can raise too)
    progress_stream = os.fdopen(os.dup(2), "w")
    try:
        configure(tf, conv, recipe, calibration, sparse=sparse, compat=compat,
                  select_tf_ops=select_tf_ops, quiet=quiet, progress_stream=progress_stream)
        return _convert(conv, recipe, select_tf_ops)
    finally:
        progress_stream.close()


def _convert(conv, recipe: Recipe, select_tf_ops: bool) -> bytes:
    log = None
    try:
        with captured() as log, warnings.catch_warnings():
            # int8 always warns "Statistics for quantized inputs were expected": noise for users
            warnings.simplefilter("ignore")
            return conv.convert()
    except Exception as err:
        text = f"{err}\n{log.text if log is not None else ''}"
        ops = _unsupported_ops(text)
        if ops:
            hint = ("retry with --select-tf-ops (the device then needs the Flex delegate)"
                    if not select_tf_ops else "replace these ops in the model")
            if recipe.supported_ops and "INT8" in " ".join(recipe.supported_ops):
                hint += ", or use a recipe without full-integer ops (dynamic, fp16)"
            raise ConversionError(f"the converter cannot lower {', '.join(ops)} with recipe "
                                  f"{recipe.name!r}; {hint}") from None
        first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
        raise ConversionError(f"conversion with recipe {recipe.name!r} failed: {first[:300]}") from None
