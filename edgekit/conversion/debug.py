"""Per-layer quantization error, and int8 with the worst layers kept in float.

TensorFlow's ``tf.lite.experimental.QuantizationDebugger`` builds an int8 model
with a NumericVerify op after every quantized op: it runs the float op on the
same (dequantized) inputs and records the difference, so each figure is the
error that layer's own quantization adds (layer-wise, not accumulated).
Layers are ranked by ``rmse / scale``: the root-mean-square error in units of
the output's quantization step. Plain rounding noise gives about 0.29
(1/sqrt(12)); a layer well above 1 loses more than rounding can explain
(weights or activations whose range one outlier dominates).

``quantize_with_denylist`` asks the same debugger for a model without the
NumericVerify ops where the named layers stay float
(``QuantizationDebugOptions(denylisted_nodes=...)`` then
``get_nondebug_quantized_model()``, TensorFlow 2.21).

Example:
    >>> report = debug_layers(source, x_calib)                 # doctest: +SKIP
    >>> report.layers[0].layer, round(report.layers[0].rmse_per_scale, 1)   # doctest: +SKIP
    ('sensitive', 15.1)
    >>> data = quantize_with_denylist(source, x_calib, ["sensitive"])       # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import math
import re
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from ..errors import ConversionError, DataError, UsageError
from ..recipes import Recipe, load_recipe
from .loader import Source
from .tf import captured, import_tf

DEBUG_SAMPLES = 100  # per-layer means settle well before this; more only adds time
METRIC = "rmse/scale"
ROUNDING_NOISE = 1 / math.sqrt(12)  # rmse/scale of ideal rounding to the quantization step


@dataclass(frozen=True)
class LayerError:
    """One quantized op's own error, measured by the debugger."""

    layer: str | None  # the Keras layer it came from, when the tensor name says so
    tensor: str  # the op's output tensor name in the .tflite (what denylisted_nodes takes)
    op: str
    rmse_per_scale: float
    rmse: float
    max_abs_error: float
    scale: float
    num_elements: int

    HEADER = ("layer", "op", METRIC, "rmse", "max abs error")

    @property
    def name(self) -> str:
        return self.layer or self.tensor

    def cells(self) -> tuple[str, ...]:
        return (self.name[:48], self.op, f"{self.rmse_per_scale:.3g}", f"{self.rmse:.3g}", f"{self.max_abs_error:.3g}")

    @staticmethod
    def footer(count: int, samples: int) -> str:
        return (f"({METRIC} of plain rounding noise is {ROUNDING_NOISE:.2f}; "
                f"{count} quantized layers, {samples} samples)")


@dataclass
class DebugReport:
    """Layers (TFLite: LayerError) or nodes (ONNX: onnx_debug.NodeError) ranked worst first on ``key``."""

    layers: list[Any]
    samples: int
    metric: str = METRIC
    notes: list[str] = field(default_factory=list)
    key: str = "rmse_per_scale"  # the field the ranking is on

    def top(self, k: int) -> list[str]:
        """The k worst distinct names (Keras layer, else tensor or node): what --denylist takes."""
        names: list[str] = []
        for e in self.layers:
            if e.name not in names:
                names.append(e.name)
        return names[:k]

    def to_dict(self) -> dict[str, Any]:
        out = {"metric": self.metric, "key": self.key, "samples": self.samples,
               "layers": [{"name": e.name, **asdict(e)} for e in self.layers], "notes": self.notes}
        if self.key == "rmse_per_scale":
            out["rounding_noise"] = ROUNDING_NOISE
        return out

    def table(self, top: int = 5) -> str:
        if not self.layers:
            return "(no quantized layers)"
        kind = type(self.layers[0])
        rows = [("rank",) + kind.HEADER] + [(str(i),) + e.cells() for i, e in enumerate(self.layers[:top], 1)]
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]
        lines.append(kind.footer(len(self.layers), self.samples))
        return "\n".join(lines)


def keras_layer_names(model) -> list[str]:
    names, stack = [], [model]
    while stack:
        layer = stack.pop()
        for sub in getattr(layer, "layers", []) or []:
            if sub is not layer:
                names.append(sub.name)
                stack.append(sub)
    return names


def layer_of(tensor: str, layer_names: Sequence[str], model_name: str | None = None) -> str | None:
    """The Keras layer a TFLite tensor (or tf2onnx node) name belongs to: ``m_1/dense_2_1/MatMul;...`` -> ``dense_2``.

    TensorFlow appends ``_1`` (the call count) to scope names; both spellings are tried. When the model's
    own scope carries that suffix (``digits_cnn_1/...``) every layer's does, so the stripped spelling is
    tried first: ``conv2d_1`` there is layer ``conv2d``, and ``conv2d_1_2`` is layer ``conv2d_1``.
    """
    known = set(layer_names)
    called = model_name is not None and re.search(rf"(^|[/;]){re.escape(model_name)}_\d+/", tensor) is not None
    for part in tensor.split(";"):
        for seg in part.split("/"):
            stripped = re.sub(r"_\d+$", "", seg)
            for cand in ((stripped, seg) if called else (seg, stripped)):
                if cand in known and cand != model_name:
                    return cand
    return None


def _int8_recipe(recipe: Recipe | None) -> Recipe:
    """The recipe itself when it quantizes activations to int8, else int8 with float I/O."""
    if recipe is not None and recipe.requires_calibration and "TFLITE_BUILTINS_INT8" in recipe.supported_ops:
        return recipe
    return load_recipe("int8-float-io")


def _debugger(src: Source, calibration: np.ndarray, recipe: Recipe, samples: np.ndarray,
              compat: str | None, options=None, sparse: bool = False):
    from .tflite import configure, make_converter

    if calibration is None or len(calibration) == 0:
        raise DataError("the per-layer debugger needs --calibration data (100-500 typical inputs)")
    tf = import_tf()
    rows = np.asarray(samples, np.float32)
    # single-input models only (convert refuses --debug / --denylist for several inputs): no export folder
    with captured():
        conv = make_converter(tf, src, None)
    configure(tf, conv, recipe, calibration, sparse=sparse, compat=compat,
              select_tf_ops=False, quiet=True)
    try:
        with captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation, "Statistics for quantized inputs"
            return tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=lambda: ([rows[i : i + 1]] for i in range(len(rows))),
                debug_options=options)
    except Exception as err:
        first = next((ln for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
        raise ConversionError(f"the quantization debugger failed: {first[:300]}") from None


def _rows(dbg) -> list[dict[str, str]]:
    buf = io.StringIO()
    dbg.layer_statistics_dump(buf)  # the documented table: op_name, scale, tensor_name and the metrics
    return list(csv.DictReader(io.StringIO(buf.getvalue())))


def debug_layers(src: Source, calibration: np.ndarray, *, eval_x: np.ndarray | None = None,
                 recipe: Recipe | None = None, compat: str | None = None,
                 samples: int = DEBUG_SAMPLES) -> DebugReport:
    """Rank the quantized layers of ``src`` by the error their int8 quantization adds.

    Statistics run on ``eval_x`` when given (held-out data), else on the calibration data.
    """
    if calibration is None:
        raise DataError("the per-layer debugger needs --calibration data (100-500 typical inputs)")
    x = eval_x if eval_x is not None else calibration
    x = np.asarray(x[:samples], np.float32)
    dbg = _debugger(src, calibration, _int8_recipe(recipe), x, compat)
    with captured(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dbg.run()
        rows = _rows(dbg)
    names = keras_layer_names(src.keras) if src.keras is not None else []
    model_name = src.keras.name if src.keras is not None else None
    out: list[LayerError] = []
    for r in rows:
        scale, mse = float(r["scale"]), float(r["mean_squared_error"])
        if not (scale > 0 and math.isfinite(mse)):
            continue
        rmse = math.sqrt(max(mse, 0.0))
        out.append(LayerError(layer=layer_of(r["tensor_name"], names, model_name), tensor=r["tensor_name"],
                              op=r["op_name"], rmse_per_scale=rmse / scale, rmse=rmse,
                              max_abs_error=float(r["max_abs_error"]), scale=scale,
                              num_elements=int(float(r["num_elements"]))))
    out.sort(key=lambda e: e.rmse_per_scale, reverse=True)
    return DebugReport(out, samples=len(x))


def _tensor_names(dbg, wanted: Sequence[str], src: Source) -> list[str]:
    """Map Keras layer names (or exact tensor names) to the tensor names the denylist needs."""
    with captured(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dbg.run()  # on the one sample it was given: the statistics table is the list of quantized ops
        tensors = [r["tensor_name"] for r in _rows(dbg)]
    names = keras_layer_names(src.keras) if src.keras is not None else []
    model_name = src.keras.name if src.keras is not None else None
    found: list[str] = []
    for w in wanted:
        hits = [t for t in tensors if t == w] or [t for t in tensors if layer_of(t, names, model_name) == w]
        if not hits:
            raise DataError(f"--denylist {w!r}: no quantized layer or tensor of that name; "
                            "run edgekit convert --debug to see the layer names")
        found += [h for h in hits if h not in found]
    return found


def quantize_with_denylist(src: Source, calibration: np.ndarray, denylist: Sequence[str], *,
                           recipe: Recipe, compat: str | None = None, sparse: bool = False) -> bytes:
    """int8 .tflite bytes with the listed layers (Keras names or tensor names) kept in float."""
    if _int8_recipe(recipe) is not recipe:
        raise UsageError(f"keeping layers in float needs an int8 recipe (int8, int8-float-io), not {recipe.name!r}")
    tf = import_tf()
    rec = recipe
    dbg = _debugger(src, calibration, rec, calibration[:1] if calibration is not None else None, compat,
                    sparse=sparse)
    tensors = _tensor_names(dbg, list(denylist), src)
    integer_io = rec.inference_input_type != "float32" or rec.inference_output_type != "float32"
    try:
        with captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dbg.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=tensors,
                                                                        fully_quantize=integer_io)
            return dbg.get_nondebug_quantized_model()
    except Exception as err:
        first = next((ln for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
        raise ConversionError(f"int8 with {', '.join(denylist)} in float failed: {first[:300]}") from None


def write_report(report: DebugReport, path) -> None:
    """The full per-layer table as JSON, written atomically."""
    import json

    from ..fsutil import atomic_write_text

    atomic_write_text(path, json.dumps(report.to_dict(), indent=2) + "\n")
