"""The candidates ``edgekit optimize`` tries: shipped recipes and their variants.

- ``fp32`` (the reference), ``fp16``, ``dynamic``;
- with calibration data: ``int8`` (int8 I/O), ``int16x8``, ``int8-float-io``, and ``int8-float-io`` with
  the k most error-prone layers kept in float (k = 1..FLOAT_TOP_K, taken from the per-layer
  debugger's ranking, which the ``int8-float-io`` trial produces);
- with a Keras source and ``--train`` data: magnitude pruning (50 % and 80 %) followed by
  dynamic range, and by int8 when there is calibration data;
- on ONNX Runtime (``--engines onnx``, names ``onnx:...``): fp32, fp16, dynamic and, with calibration data,
  static int8 per channel and per tensor, each with the MinMax, Entropy and Percentile calibration (per
  channel is not always better on ONNX Runtime), and the per-channel and per-tensor MinMax int8 with the k
  nodes that add the most error kept in float (ranked by onnx_debug, which the ``onnx:int8`` trial runs).
  ``int8-float-io`` is not tried there: on ONNX it is the same QDQ file as ``int8``.

Example:
    >>> [c.name for c in base_candidates(calibration=False, keras=True, train=False)]
    ['fp32', 'fp16', 'dynamic']
    >>> float_layer_candidates(["sensitive", "probs"], k_max=2)[1].name
    'int8-float-io+float(sensitive,probs)'
    >>> [c.name for c in onnx_candidates(calibration=True)][3:6]
    ['onnx:int8', 'onnx:int8-entropy', 'onnx:int8-percentile']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

FLOAT_TOP_K = 3
PRUNE_LEVELS = (0.5, 0.8)
DEBUG_RECIPE = "int8-float-io"  # its trial also runs the per-layer debugger
ENGINES = ("tflite", "onnx")
ONNX_PREFIX = "onnx:"
# onnxruntime.quantization.CalibrationMethod names tried; Distribution is left out: on the published
# PaddleOCR text-direction classifier it gave 50% agreement (a coin toss) per channel and per tensor
ONNX_CALIBRATIONS = ("MinMax", "Entropy", "Percentile")


@dataclass(frozen=True)
class Candidate:
    name: str
    recipe: str
    float_layers: tuple[str, ...] = ()
    prune: float | None = None
    debug: bool = False  # run the per-layer debugger in this trial (its ranking feeds the float-layer variants)
    engine: str = "tflite"  # tflite (.tflite, TensorFlow's converter) or onnx (.onnx, onnxruntime.quantization)
    per_channel: bool | None = None  # ONNX static int8: override the recipe's [onnx] per_channel
    calibration_method: str | None = None  # ONNX static int8: override the recipe's calibration_method

    def params(self) -> dict[str, Any]:
        """What the result depends on (the journal key); ``debug`` is not: it only adds a report.
        The ONNX fields appear only when set, so TFLite keys of earlier journals stay valid."""
        d = asdict(self)
        d.pop("debug")
        d["float_layers"] = list(self.float_layers)
        for k in ("engine", "per_channel", "calibration_method"):
            if d[k] is None or (k == "engine" and d[k] == "tflite"):
                d.pop(k)
        return d

    def to_dict(self) -> dict[str, Any]:
        return {**self.params(), "debug": self.debug}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Candidate":
        return cls(d["name"], d["recipe"], tuple(d.get("float_layers") or ()), d.get("prune"), bool(d.get("debug")),
                   d.get("engine") or "tflite", d.get("per_channel"), d.get("calibration_method"))


def base_candidates(*, calibration: bool, keras: bool, train: bool) -> list[Candidate]:
    out = [Candidate("fp32", "fp32"), Candidate("fp16", "fp16"), Candidate("dynamic", "dynamic")]
    if calibration:
        out += [Candidate("int8", "int8"), Candidate(DEBUG_RECIPE, DEBUG_RECIPE, debug=True),
                Candidate("int16x8", "int16x8")]  # accurate, but about 26x slower than fp32 on CPUs
    if keras and train:
        for level in PRUNE_LEVELS:
            pct = int(round(level * 100))
            out.append(Candidate(f"prune{pct}-dynamic", "dynamic", prune=level))
            if calibration:
                out.append(Candidate(f"prune{pct}-int8-float-io", "int8-float-io", prune=level))
    return out


def onnx_candidates(*, calibration: bool) -> list[Candidate]:
    """The ONNX Runtime candidates (see the module docstring); ``onnx:int8`` runs the node debugger."""
    out = [Candidate(ONNX_PREFIX + r, r, engine="onnx") for r in ("fp32", "fp16", "dynamic")]
    if calibration:
        for per_channel in (True, False):
            for method in ONNX_CALIBRATIONS:
                name = ONNX_PREFIX + "int8" + ("" if per_channel else "-per-tensor") + (
                    "" if method == "MinMax" else f"-{method.lower()}")
                out.append(Candidate(name, "int8", engine="onnx", per_channel=per_channel, calibration_method=method,
                                     debug=per_channel and method == "MinMax"))
    return out


def float_layer_candidates(ranked: Sequence[str], k_max: int = FLOAT_TOP_K,
                           bases: Sequence[Candidate] = (Candidate(DEBUG_RECIPE, DEBUG_RECIPE),)) -> list[Candidate]:
    """Each base (TFLite: int8 with float I/O) with the top-k ranked layers (or ONNX nodes) kept in float,
    k = 1..k_max."""
    out = []
    for base in bases:
        for k in range(1, min(k_max, len(ranked)) + 1):
            layers = tuple(ranked[:k])
            out.append(replace(base, name=f"{base.name}+float({','.join(layers)})", float_layers=layers, debug=False))
    return out


def float_bases(debugged: Candidate) -> list[Candidate]:
    """The candidates the debugged one's ranking makes float-layer variants of: on ONNX its per-tensor twin too."""
    if debugged.engine != "onnx":
        return [replace(debugged, debug=False)]
    tensor = replace(debugged, name=debugged.name.replace("int8", "int8-per-tensor", 1), per_channel=False)
    return [replace(debugged, debug=False), replace(tensor, debug=False)]


def file_name(out_name: str, engine: str) -> str:
    """The trial's (and the written pick's) file name: OUT's stem with the engine's suffix."""
    from pathlib import PurePath

    return PurePath(out_name).with_suffix(".onnx" if engine == "onnx" else ".tflite").name


def select_names(cands: list[Candidate], only: Sequence[str] | None) -> list[Candidate]:
    """Keep the named base candidates (``--candidates fp32,dynamic``); None keeps all."""
    if not only:
        return cands
    return [c for c in cands if c.name in only]
