"""Conversion recipes: one TOML file each in converters/, parsed into a frozen Recipe.

A recipe states only what differs from plain float32 conversion.

Example:
    >>> r = load_recipe("int8")
    >>> r.requires_calibration, r.inference_input_type
    (True, 'int8')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from .errors import RecipeError
from .tomldata import check_keys, list_names, read_named

OPTIMIZATIONS = {"DEFAULT"}
SUPPORTED_TYPES = {"float16", "int8", "int16"}
SUPPORTED_OPS = {
    "TFLITE_BUILTINS",
    "TFLITE_BUILTINS_INT8",
    "EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8",
    "SELECT_TF_OPS",
}
IO_TYPES = {"float32", "int8", "uint8", "int16"}
ONNX_QUANTIZATIONS = {"none", "static", "dynamic", "fp16"}
# onnxruntime.quantization.CalibrationMethod member names
ONNX_CALIBRATION_METHODS = {"MinMax", "Entropy", "Percentile", "Distribution"}


@dataclass(frozen=True)
class OnnxRecipe:
    """A recipe's ONNX Runtime form (its ``[onnx]`` section): how onnxruntime.quantization applies it.

    quantization: none (fp32 as exported), static (QDQ int8 weights and activations: calibration),
    dynamic (int8 weights, activations quantized at run time), fp16 (float16 weights and compute)."""

    quantization: str = "none"
    per_channel: bool = True  # weight scales per output channel; per-tensor is sometimes better on ORT
    calibration_method: str = "MinMax"
    note: str = ""  # what differs from the recipe's TFLite meaning (said by convert and edgekit recipes)

    def summary(self) -> str:
        """One line: what ONNX Runtime gets, e.g. ``static QDQ int8, per channel, MinMax``."""
        if self.quantization != "static":
            return {"none": "float32 as exported", "fp16": "float16 weights and compute, float32 I/O",
                    "dynamic": "int8 weights, activations quantized at run time"}[self.quantization]
        return (f"static QDQ int8, per {'channel' if self.per_channel else 'tensor'}, {self.calibration_method} "
                "calibration, float32 I/O")


@dataclass(frozen=True)
class Recipe:
    """A conversion recipe: what differs from plain float32 conversion (the manifest records the one used)."""

    name: str
    description: str = ""
    optimizations: tuple[str, ...] = ()
    supported_types: tuple[str, ...] = ()
    supported_ops: tuple[str, ...] = ()
    inference_input_type: str = "float32"
    inference_output_type: str = "float32"
    requires_calibration: bool = False
    prune_sparsity: float | None = None  # prune to this sparsity before converting
    sparsity_optimization: bool = False  # converter's EXPERIMENTAL_SPARSITY (set automatically when pruning)
    note: str = ""  # caveat shown to users (e.g. int16x8 is slow on CPUs)
    float_layers: tuple[str, ...] = ()  # layers kept in float in an int8 recipe (convert --denylist)
    onnx: Optional[OnnxRecipe] = None  # the [onnx] section; None: the recipe has no ONNX form

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _check_members(values: list, allowed: set[str], key: str, where: str) -> tuple[str, ...]:
    for v in values:
        if v not in allowed:
            raise RecipeError(f"{where}: {key} has {v!r}; allowed: {', '.join(sorted(allowed))}")
    return tuple(values)


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A shipped recipe by name (see ``list_recipes()``) or a recipe file by path."""
    table, where = read_named("converters", name_or_path, RecipeError)
    t = dict(table)
    onnx = t.pop("onnx", None)
    check_keys(t, Recipe, where, RecipeError)
    t["onnx"] = None if onnx is None else _onnx_section(onnx, f"{where} [onnx]")
    t.setdefault("name", Path(str(name_or_path)).stem)
    t["optimizations"] = _check_members(t.get("optimizations", []), OPTIMIZATIONS, "optimizations", where)
    t["supported_types"] = _check_members(t.get("supported_types", []), SUPPORTED_TYPES, "supported_types", where)
    t["supported_ops"] = _check_members(t.get("supported_ops", []), SUPPORTED_OPS, "supported_ops", where)
    t["float_layers"] = tuple(str(v) for v in t.get("float_layers", []))
    if t["float_layers"] and not t.get("requires_calibration"):
        raise RecipeError(f"{where}: float_layers keeps layers of an int8 recipe in float; it needs "
                          "requires_calibration = true")
    for key in ("inference_input_type", "inference_output_type"):
        if t.get(key, "float32") not in IO_TYPES:
            raise RecipeError(f"{where}: {key} is {t[key]!r}; allowed: {', '.join(sorted(IO_TYPES))}")
    sp = t.get("prune_sparsity")
    if sp is not None and not 0.0 < float(sp) < 1.0:
        raise RecipeError(f"{where}: prune_sparsity must be between 0 and 1 (exclusive), got {sp}")
    integer_io = {t.get("inference_input_type", "float32"), t.get("inference_output_type", "float32")} - {"float32"}
    if integer_io and not t.get("requires_calibration"):
        raise RecipeError(f"{where}: integer input/output needs requires_calibration = true")
    return Recipe(**t)


def _onnx_section(table: Any, where: str) -> OnnxRecipe:
    if not isinstance(table, dict):
        raise RecipeError(f"{where}: must be a table ([onnx] with quantization = ...)")
    check_keys(table, OnnxRecipe, where, RecipeError)
    _check_members([table.get("quantization", "none")], ONNX_QUANTIZATIONS, "quantization", where)
    _check_members([table.get("calibration_method", "MinMax")], ONNX_CALIBRATION_METHODS, "calibration_method",
                   where)
    return OnnxRecipe(**table)


def list_recipes() -> list[str]:
    return list_names("converters")
