"""ONNX out (issue 16 steps 3 and 4): Keras 3's ``model.export(path, format="onnx")`` (tf2onnx) for the
float model, then the recipe's ``[onnx]`` form through onnxruntime.quantization (the converter, not an
interpreter): ``quant_pre_process``, then ``quantize_static`` (QDQ) or ``quantize_dynamic``, or float16.

The bytes are checked like a .tflite's: the caller runs them through the ONNX Runtime session against
the source (Keras, or the float ONNX model).

Example:
    >>> data = to_onnx(load_source("digits.keras"))                           # doctest: +SKIP
    >>> int8 = quantize_onnx(data, load_recipe("int8").onnx, {"image": x})    # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Sequence

from ..engine.onnxrt import get_backend
from ..errors import ConversionError, DataError, MissingDependencyError, UsageError
from ..recipes import OnnxRecipe, Recipe
from .loader import Source
from .tf import captured

SUFFIX = ".onnx"
MIN_OPSET = 13  # per-channel QDQ (QuantizeLinear axis) needs it


def is_onnx_output(path: Path) -> bool:
    return path.suffix.lower() == SUFFIX


def check_onnx_options(source: Source, recipe: Recipe, **options) -> None:
    """What ONNX output does not take yet, refused before any work starts (validate-first).

    ``options``: the convert arguments that only the TFLite path has, by name (truthy = asked for)."""
    if recipe.onnx is None:
        raise UsageError(f"recipe {recipe.name!r} has no ONNX form (no [onnx] section); ONNX output takes "
                         "fp32, fp16, dynamic, int8, int8-float-io")
    asked = [name for name, value in options.items() if value]
    if asked:
        raise UsageError(f"ONNX output does not take --{asked[0].replace('_', '-')} yet; write a .tflite for it")
    if source.keras is None and source.onnx is None:
        raise UsageError("ONNX output needs a Keras (.keras, .h5) or ONNX source, not a SavedModel")
    if source.onnx is None:
        _tf2onnx()
    _quantizer(recipe.onnx)
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


def _quantizer(recipe: OnnxRecipe) -> Any:
    """The module a recipe's ONNX form needs (validate-first); MissingDependencyError naming what to install."""
    if recipe.quantization == "none":
        return None
    if recipe.quantization == "fp16":
        try:
            import onnxruntime.transformers.float16 as float16
        except ImportError:
            raise MissingDependencyError("fp16 is not available for ONNX here (onnxruntime.transformers.float16 "
                                         "is missing); use recipe dynamic or int8, or write a .tflite") from None
        return float16
    try:
        import sympy  # noqa: F401  (quant_pre_process's symbolic shape inference imports it)
        import onnxruntime.quantization as quantization
    except ImportError as err:
        raise MissingDependencyError(f"ONNX quantization needs {err.name}; pip install edgekit[onnx]") from None
    return quantization


def quantize_onnx(model: bytes, recipe: OnnxRecipe, calibration: dict[str, Any] | None = None, *,
                  exclude: Sequence[str] = ()) -> bytes:
    """Float ONNX bytes in the recipe's ONNX form, slimmed (see ``slim``); a failure becomes ConversionError.

    ``calibration``: {ONNX input name: float array (N, ...)}, needed by static quantization.
    ``exclude``: node names of the prepared graph (``prepare``) kept in float (``nodes_to_exclude``;
    onnx_debug.node_names maps --denylist names to them).
    Example: ``quantize_onnx(data, load_recipe("dynamic").onnx)``."""
    mod = _quantizer(recipe)
    if recipe.quantization == "fp16":  # keep_io_types: the app still feeds and reads float32
        return _guarded(recipe, lambda: slim(_serialized(mod.convert_float_to_float16(_parsed(model),
                                                                                      keep_io_types=True))))
    if recipe.quantization == "none":
        return _guarded(recipe, lambda: slim(model))
    return slim(quantize_prepared(prepare(model), recipe, calibration, exclude=exclude))


def _guarded(recipe: OnnxRecipe, work):
    try:
        return work()
    except (MissingDependencyError, ConversionError, DataError):
        raise
    except Exception as err:  # onnx and onnxruntime raise whatever their graph passes hit
        text = " ".join(str(err).split())[:240]
        raise ConversionError(f"ONNX {recipe.quantization} quantization failed: {type(err).__name__}: {text}") from None


class _SkipTempSave:
    """The ``onnx`` module as onnxruntime's symbolic shape inference sees it, minus one save.

    ``SymbolicShapeInference.infer_shapes`` (onnxruntime/tools/symbolic_shape_infer.py, 1.32) saves
    ``sym_shape_infer_temp.onnx``, with the weights as uuid-named ``.data`` files, into the current
    directory before it raises on an incomplete inference. ``prepare`` catches that and retries without it,
    so the files were only litter in the user's folder (they reached this repository once). Only that
    module's name ``onnx`` is replaced, and only that one file name is skipped."""

    TEMP = "sym_shape_infer_temp.onnx"

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name: str):
        return getattr(self._module, name)

    def save_model(self, proto, f, *args, **kwargs):
        if isinstance(f, str) and f == self.TEMP:
            return None
        return self._module.save_model(proto, f, *args, **kwargs)


def _no_litter_from_symbolic_inference() -> None:
    try:
        import onnxruntime.tools.symbolic_shape_infer as ssi  # a graph pass that quant_pre_process runs
    except ImportError:  # another layout of onnxruntime: nothing to keep quiet
        return
    if not isinstance(getattr(ssi, "onnx", None), _SkipTempSave) and hasattr(ssi, "onnx"):
        ssi.onnx = _SkipTempSave(ssi.onnx)


def prepare(model: bytes) -> bytes:
    """The float graph the quantizer works on: opset 13 or newer (per-channel QuantizeLinear needs the
    ``axis`` attribute, new in 13; the quantizer writes it and the model does not load otherwise, as a
    published opset-11 PaddleOCR classifier showed), then ``quant_pre_process`` (shape inference and
    folding: fewer, fused nodes to quantize). Its symbolic shape inference asserts on some real graphs
    (a Concat on axis 1 there): then it runs with ONNX's own shape inference only."""
    mod = _quantizer(OnnxRecipe("static"))
    _no_litter_from_symbolic_inference()

    def work() -> bytes:
        with tempfile.TemporaryDirectory(prefix="edgekit-onnxp-") as workdir:
            src, pre = (str(Path(workdir) / n) for n in ("float.onnx", "pre.onnx"))
            Path(src).write_bytes(_upgraded(model))
            with captured():
                try:
                    mod.quant_pre_process(src, pre)
                except Exception:  # noqa: BLE001  (symbolic inference raises bare AssertionError)
                    mod.quant_pre_process(src, pre, skip_symbolic_shape=True)
            return Path(pre).read_bytes()

    return _guarded(OnnxRecipe("static"), work)


def _upgraded(model: bytes) -> bytes:
    parsed = _parsed(model)
    opset = next((o.version for o in parsed.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset >= MIN_OPSET:
        return model
    from onnx import version_converter

    return _serialized(version_converter.convert_version(parsed, MIN_OPSET))


def quantize_prepared(prepared: bytes, recipe: OnnxRecipe, calibration: dict[str, Any] | None, *,
                      exclude: Sequence[str] = ()) -> bytes:
    """QDQ (static) or dynamic int8 bytes of a ``prepare``d graph, not slimmed (the debugger reads them)."""
    mod = _quantizer(recipe)
    missing = sorted(set(exclude) - {n.name for n in _parsed(prepared).graph.node})
    if missing:
        raise DataError(f"--denylist {missing[0]!r}: no node of that name in the ONNX graph; "
                        "run edgekit convert --debug to see the node names")

    def work() -> bytes:
        with tempfile.TemporaryDirectory(prefix="edgekit-onnxq-") as workdir:
            src, out = (str(Path(workdir) / n) for n in ("pre.onnx", "quant.onnx"))
            Path(src).write_bytes(prepared)
            with captured():  # the quantizer logs warnings per node
                _quantize(mod, recipe, src, out, calibration, list(exclude))
            return _float_inputs(Path(out).read_bytes(), exclude) if exclude else Path(out).read_bytes()

    return _guarded(recipe, work)


def _float_inputs(data: bytes, nodes: Sequence[str]) -> bytes:
    """Feed the nodes kept in float their activations without int8 rounding, clipped to the same range.

    nodes_to_exclude keeps a node's weights and computation float, but an input another node quantizes
    still reaches it through QuantizeLinear -> DequantizeLinear: on the planted digits model the unit the
    next layer amplifies 100x rounds to zero there, and keeping that layer in float lost 10 points instead of
    recovering 3. TFLite's debugger keeps such an input float; so does this, with one catch: the quantizer
    folds a Relu into its output's zero point (the tensor before QuantizeLinear still holds the negative
    values), so the node reads ``Clip(x, (-128 - zp) * scale, (127 - zp) * scale)``: the round trip's range
    without its rounding. Other readers keep the round trip; Q/DQ pairs no one reads are dropped."""
    import numpy as np
    from onnx import helper, numpy_helper

    model = _parsed(data)
    graph = model.graph
    made_by = {o: n for n in graph.node for o in n.output}
    inits = {i.name: i for i in graph.initializer}
    clips: dict[str, str] = {}
    for node in list(graph.node):
        if node.name not in nodes:
            continue
        for i, name in enumerate(node.input):
            dq = made_by.get(name)
            q = made_by.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is None or q.op_type != "QuantizeLinear" or len(q.input) < 3 or q.input[1] not in inits:
                continue  # an int8 weight (no QuantizeLinear), or a form this does not know: keep the round trip
            scale = float(numpy_helper.to_array(inits[q.input[1]]).reshape(-1)[0])
            zp_array = numpy_helper.to_array(inits[q.input[2]])
            zp, info = int(zp_array.reshape(-1)[0]), np.iinfo(zp_array.dtype)
            if q.input[0] not in clips:
                bounds = [numpy_helper.from_array(np.array(v, np.float32), f"{q.input[0]}_float_{k}")
                          for k, v in (("min", (info.min - zp) * scale), ("max", (info.max - zp) * scale))]
                graph.initializer.extend(bounds)
                clips[q.input[0]] = f"{q.input[0]}_float"
                clip = helper.make_node("Clip", [q.input[0], bounds[0].name, bounds[1].name], [clips[q.input[0]]],
                                        name=f"{q.input[0]}_float_Clip")
                graph.node.insert(list(graph.node).index(node), clip)
            node.input[i] = clips[q.input[0]]
    while True:  # drop what no node and no graph output reads any more
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                and not any(o in read for o in n.output)]
        if not dead:
            return _serialized(model)
        for n in dead:
            graph.node.remove(n)


def _quantize(mod, recipe: OnnxRecipe, src: str, out: str, calibration: dict[str, Any] | None,
              exclude: list[str]) -> None:
    if recipe.quantization == "dynamic":
        mod.quantize_dynamic(src, out, per_channel=recipe.per_channel, weight_type=mod.QuantType.QInt8,
                             nodes_to_exclude=exclude)
        return
    if not calibration:
        raise ConversionError("static ONNX quantization needs calibration data")
    mod.quantize_static(src, out, reader(mod, calibration), quant_format=mod.QuantFormat.QDQ,
                        per_channel=recipe.per_channel, activation_type=mod.QuantType.QInt8,
                        weight_type=mod.QuantType.QInt8, nodes_to_exclude=exclude,
                        calibrate_method=getattr(mod.CalibrationMethod, recipe.calibration_method))


def reader(mod, arrays: dict[str, Any], batch: int = 1):
    """A CalibrationDataReader over {input name: array}: one sample per feed (fixed batch axes take only 1)."""
    import numpy as np

    n = len(next(iter(arrays.values())))

    class Reader(mod.CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([{k: np.ascontiguousarray(v[i:i + batch]) for k, v in arrays.items()}
                               for i in range(0, n, batch)])

        def get_next(self):
            return next(self.feeds, None)

    return Reader()


def _parsed(data: bytes):
    import onnx

    return onnx.load_from_string(data)


def _serialized(model) -> bytes:
    return model.SerializeToString()


def slim(data: bytes) -> bytes:
    """The model without what ONNX Runtime does not need to run it: value_info (intermediate shapes, which
    quant_pre_process adds for every tensor) and doc strings. About 1 KB on the digits CNN (0.301x of the float
    file instead of 0.304x); the share grows as the weights shrink."""
    model = _parsed(data)
    del model.graph.value_info[:]
    model.doc_string = ""
    model.graph.doc_string = ""
    for node in model.graph.node:
        node.doc_string = ""
    return _serialized(model)
