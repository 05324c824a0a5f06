"""Reading an .onnx without running it (``edgekit inspect``): opsets, IR version, op histogram,
initializer sizes, and whether the graph is float or quantized (QDQ nodes, or integer ops).

Read with the ``onnx`` package (the ``onnx`` extra); no ONNX Runtime session is created.

Example:
    >>> info = read_onnx_info(open("digits.onnx", "rb").read(), "digits.onnx")   # doctest: +SKIP
    >>> info["quantization"], info["opsets"]                                      # doctest: +SKIP
    ('float', {'ai.onnx': 13})
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ..errors import MissingDependencyError, ModelLoadError
from .onnxrt import INSTALL_HINT

_QDQ = {"QuantizeLinear", "DequantizeLinear"}
_INTEGER_OPS = {"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "DynamicQuantizeLinear"}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(f"reading .onnx files needs the onnx package; {INSTALL_HINT}") from None
    return onnx


def _tensor(onnx, v) -> dict[str, Any]:
    t = v.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "unknown"
    return {"name": v.name, "shape": shape, "dtype": dtype}


def _initializer(onnx, t) -> dict[str, Any]:
    itemsize = onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize if t.data_type else 0
    return {"name": t.name, "shape": list(t.dims), "bytes": math.prod(t.dims) * itemsize}


def _graphs(g):
    """The graph and every subgraph (If branches, Loop bodies): Silero VAD keeps all its nodes in an If."""
    yield g
    for node in g.node:
        for a in node.attribute:
            if a.HasField("g"):
                yield from _graphs(a.g)
            for sub in a.graphs:
                yield from _graphs(sub)


def quantization_kind(op_types) -> str:
    """"QDQ" (QuantizeLinear/DequantizeLinear pairs), "integer ops" (QLinearConv, MatMulInteger, ...) or "float"."""
    ops = set(op_types)
    return "QDQ" if ops & _QDQ else "integer ops" if ops & _INTEGER_OPS else "float"


def read_onnx_info(data: bytes, label: str, largest: int = 5) -> dict[str, Any]:
    """What an ONNX file holds, JSON-ready; ModelLoadError (one line) when it does not parse."""
    onnx = _onnx()
    try:
        model = onnx.load_from_string(data)
    except Exception as err:  # protobuf's DecodeError and friends: a cut or garbled file
        raise ModelLoadError(f"{label}: not a readable ONNX model ({type(err).__name__}); check the file") from None
    g = model.graph
    graphs = list(_graphs(g))
    inits = [_initializer(onnx, t) for sub in graphs for t in sub.initializer]
    init_names = {t.name for t in g.initializer}
    ops = Counter(n.op_type for sub in graphs for n in sub.node)
    return {
        "model": label, "format": "onnx", "size_bytes": len(data), "ir_version": model.ir_version,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [_tensor(onnx, v) for v in g.input if v.name not in init_names],
        "outputs": [_tensor(onnx, v) for v in g.output],
        "op_count": sum(ops.values()),  # subgraphs included
        "histogram": [{"op": op, "count": n} for op, n in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))],
        "initializers": {"count": len(inits), "bytes": sum(i["bytes"] for i in inits),
                         "largest": sorted(inits, key=lambda i: -i["bytes"])[:largest]},
        "quantization": quantization_kind(ops),
    }


def render_onnx(doc: dict[str, Any]) -> str:
    kb = 1024
    opsets = ", ".join(f"{d} {v}" for d, v in doc["opsets"].items())
    init = doc["initializers"]
    lines = [f"{doc['model']}: ONNX, {doc['size_bytes'] / kb:,.1f} KB, {doc['op_count']} nodes, "
             f"IR version {doc['ir_version']}, opset {opsets}, {doc['quantization']}",
             f"producer {doc['producer'] or 'unknown'}; initializers: {init['count']}, {init['bytes'] / kb:,.1f} KB",
             "inputs:"] + [f"  {t['name']}: {t['shape']} {t['dtype']}" for t in doc["inputs"]]
    lines += ["outputs:"] + [f"  {t['name']}: {t['shape']} {t['dtype']}" for t in doc["outputs"]]
    lines += ["ops (type, count):"] + [f"  {h['op']:28} x{h['count']}" for h in doc["histogram"]]
    lines += ["largest initializers:"] + [f"  {i['name']}: {i['shape']} {i['bytes'] / kb:,.1f} KB"
                                          for i in init["largest"]]
    return "\n".join(lines)
