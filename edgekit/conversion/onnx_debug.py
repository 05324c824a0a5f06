"""Per-node int8 error of an ONNX model (ONNX Runtime's ``qdq_loss_debug``), and the nodes --denylist names.

The float graph (after onnx.prepare, as the quantizer sees it) and its QDQ int8 form run on the same
samples with every activation made an output (``modify_model_output_intermediate_tensors``,
``collect_activations``, ``create_activation_matching``). For each quantized activation the QDQ model's
value (after its DequantizeLinear) is compared with the float model's: the noise-to-signal power there is
what int8 has done so far. A node is ranked by the noise it adds: that ratio at its output minus the
largest at the nearest quantized tensors that feed it (its weights' rounding, its output's rounding and
any clipping), in dB of the signal (-30 dB: the node adds noise at a thousandth of the signal's power).

ORT's own ``qdq_err`` (each tensor before its QuantizeLinear against after its DequantizeLinear) is not
used to rank: where the quantizer drops a Relu into its output's zero point, the tensor "before" still
holds the negative values, so that figure reports the Relu, not an error (4.9 dB on a healthy digits
CNN whose output SQNR was 44 dB).

Example:
    >>> report = debug_nodes(float_bytes, load_recipe("int8").onnx, {"x": calib}, {"x": held_out})  # doctest: +SKIP
    >>> report.top(2)                                                                            # doctest: +SKIP
    ['Mul@26', 'Mul@23']
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConversionError, DataError, UsageError
from ..recipes import OnnxRecipe
from .debug import DEBUG_SAMPLES, DebugReport, layer_of
from .onnx import _guarded, _parsed, _quantizer, prepare, quantize_prepared, reader
from .tf import captured

METRIC = "noise added dB"
SILENT = -200.0  # dB for "adds no noise at all" (identical values): a finite number keeps the JSON valid


@dataclass(frozen=True)
class NodeError:
    """One quantized activation: the node that makes it and the noise int8 adds there."""

    node: str  # the node's name in the prepared graph (what --denylist / nodes_to_exclude take)
    layer: str | None  # the Keras layer it came from (a Keras source exported to ONNX), else None
    op: str
    tensor: str
    noise_added_db: float  # 10 log10(noise/signal here - the same upstream); ranked on, higher is worse
    sqnr_db: float  # the QDQ model's output against the float model's here (accumulated), dB
    input_sqnr_db: float | None  # the same at the nearest quantized inputs (the worst of them); None: none

    HEADER = ("node", "op", METRIC, "SQNR in dB", "SQNR out dB")

    @property
    def name(self) -> str:
        return self.layer or self.node

    def cells(self) -> tuple[str, ...]:
        vin = "-" if self.input_sqnr_db is None else f"{self.input_sqnr_db:.1f}"
        added = "none" if self.noise_added_db <= SILENT else f"{self.noise_added_db:.1f}"
        return (self.name[:48], self.op, added, vin, f"{self.sqnr_db:.1f}")

    @staticmethod
    def footer(count: int, samples: int) -> str:
        return (f"(noise each node adds, dB of the signal power, higher is worse; SQNR against the float model "
                f"before and after it; {count} quantized nodes, {samples} samples)")


def _nsr(ref: np.ndarray, out: np.ndarray) -> float:
    """Noise-to-signal power ratio of ``out`` against ``ref`` (0: identical)."""
    return float(np.sum((ref - out) ** 2)) / max(float(np.sum(ref ** 2)), 1e-30)


def _db(ratio: float) -> float:
    return 10.0 * math.log10(ratio) if ratio > 0 else SILENT


def _flat(arrays) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays]).astype(np.float64)


def debug_nodes(float_model: bytes, recipe: OnnxRecipe, calibration: dict[str, Any], samples: dict[str, Any], *,
                layer_names: Sequence[str] = (), model_name: str | None = None,
                limit: int = DEBUG_SAMPLES) -> DebugReport:
    """Rank the quantized nodes of an ONNX model by the error their int8 quantization adds, worst first.

    ``calibration`` / ``samples``: {ONNX input name: array}; the statistics run on ``samples`` (held-out
    data when given, else the calibration data). ``recipe``: a static ONNX recipe (per channel and
    calibration method as it says)."""
    if recipe.quantization != "static":
        recipe = OnnxRecipe("static")
    q = _quantizer(recipe)
    from onnxruntime.quantization import qdq_loss_debug as dbg

    prepared = prepare(float_model)
    qdq_bytes = quantize_prepared(prepared, recipe, calibration)
    feeds = {k: np.asarray(v[:limit]) for k, v in samples.items()}
    n = len(next(iter(feeds.values())))

    def work():
        with tempfile.TemporaryDirectory(prefix="edgekit-onnxd-") as tmp:
            paths = {k: str(Path(tmp) / f"{k}.onnx") for k in ("float", "qdq", "float-aug", "qdq-aug")}
            Path(paths["float"]).write_bytes(prepared)
            Path(paths["qdq"]).write_bytes(qdq_bytes)
            with captured():
                for k in ("float", "qdq"):
                    dbg.modify_model_output_intermediate_tensors(paths[k], paths[f"{k}-aug"])
                acts = {k: dbg.collect_activations(paths[f"{k}-aug"], reader(q, feeds)) for k in ("float", "qdq")}
            return dbg.create_activation_matching(acts["qdq"], acts["float"])

    matched = _guarded(recipe, work)
    graph = _parsed(prepared).graph
    made_by = {o: node for node in graph.node for o in node.output}
    nsr = {t: _nsr(_flat(m["float"]), _flat(m["post_qdq"])) for t, m in matched.items()
           if m.get("float") and m.get("post_qdq")}

    def feeding(tensor: str, seen: set[str]) -> list[str]:
        """The nearest quantized tensors upstream of ``tensor``'s node (through unquantized ones)."""
        out = []
        for i in made_by[tensor].input:
            if i in nsr:
                out.append(i)
            elif i in made_by and i not in seen:
                seen.add(i)
                out += feeding(i, seen)
        return out

    rows: list[NodeError] = []
    for tensor, ratio in nsr.items():
        node = made_by.get(tensor)
        if node is None:
            continue  # a graph input: no node to keep in float
        upstream = [nsr[t] for t in feeding(tensor, set())]
        before = max(upstream, default=0.0)
        rows.append(NodeError(
            node=node.name, layer=layer_of(node.name, layer_names, model_name) if layer_names else None,
            op=node.op_type, tensor=tensor, noise_added_db=_db(max(ratio - before, 0.0)), sqnr_db=-_db(ratio),
            input_sqnr_db=-_db(before) if upstream else None))
    if not rows:
        raise ConversionError("the ONNX quantization debugger found no quantized node to rank")
    rows.sort(key=lambda e: e.noise_added_db, reverse=True)
    return DebugReport(rows, samples=n, metric=METRIC, key="noise_added_db")


def node_names(prepared: bytes, wanted: Sequence[str], layer_names: Sequence[str] = (),
               model_name: str | None = None) -> list[str]:
    """The prepared graph's node names for --denylist entries: a node name, or a Keras layer's nodes."""
    nodes = [n.name for n in _parsed(prepared).graph.node if n.name]
    found: list[str] = []
    for w in wanted:
        hits = [n for n in nodes if n == w] or [n for n in nodes if layer_names and
                                               layer_of(n, layer_names, model_name) == w]
        if not hits:
            raise DataError(f"--denylist {w!r}: no node or layer of that name in the ONNX graph; "
                            "run edgekit convert --debug to see the names")
        found += [h for h in hits if h not in found]
    return found


def quantize_with_float_nodes(float_model: bytes, recipe: OnnxRecipe, calibration: dict[str, Any],
                              denylist: Sequence[str], *, layer_names: Sequence[str] = (),
                              model_name: str | None = None) -> bytes:
    """Static int8 ONNX bytes with the listed nodes (or Keras layers' nodes) kept in float, slimmed."""
    from .onnx import slim

    if recipe.quantization != "static":
        raise UsageError(f"keeping nodes in float needs an int8 recipe (int8, int8-float-io), not "
                         f"{recipe.quantization!r} quantization")
    prepared = prepare(float_model)
    exclude = node_names(prepared, denylist, layer_names, model_name)
    return slim(quantize_prepared(prepared, recipe, calibration, exclude=exclude))
