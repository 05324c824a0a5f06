"""Read a .tflite file's I/O tensors and operators from its flatbuffer, without an interpreter.

Useful when no interpreter here can load the model (TensorFlow ops that need the
Flex delegate) and to name the custom ops a model needs. Uses the schema module
that ai-edge-litert ships.

Example:
    >>> ins, outs = io_specs(open("model.tflite", "rb").read())    # doctest: +SKIP
    >>> ins[0].shape, ins[0].dtype                                  # doctest: +SKIP
    ([1, 8, 8, 1], 'int8')
"""

from __future__ import annotations

import dataclasses

from ..errors import MissingDependencyError, ModelLoadError
from ..manifest import TensorSpec, batch_axis_of

DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
           7: "int16", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 8: "complex64", 15: "uint32",
          16: "uint16", 17: "int4", 18: "bfloat16"}
_DTYPES = DTYPES  # the old private name


def schema():
    """The TFLite flatbuffer schema module ai-edge-litert ships (no TensorFlow needed)."""
    try:
        from ai_edge_litert import schema_py_generated as mod
    except ImportError:
        raise MissingDependencyError("reading .tflite structure needs ai-edge-litert; pip install ai-edge-litert") from None
    return mod


def is_tflite(data: bytes) -> bool:
    """The flatbuffer file identifier "TFL3" sits at bytes 4..8."""
    return len(data) >= 8 and data[4:8] == b"TFL3"


def _model(data: bytes):
    if not is_tflite(data):
        raise ModelLoadError("not a TensorFlow Lite model (no TFL3 identifier)")
    s = schema()
    try:
        return s, s.Model.GetRootAs(data, 0)
    except Exception as err:
        raise ModelLoadError(f"not a readable TensorFlow Lite flatbuffer ({err})") from None


def _spec(tensor, index: int) -> TensorSpec:
    if tensor.ShapeSignatureLength():  # -1 for dynamic dimensions
        shape = [int(v) for v in tensor.ShapeSignatureAsNumpy()]
    else:
        shape = [int(v) for v in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    q = tensor.Quantization()
    scale = zp = None
    if q is not None and q.ScaleLength() == 1:
        scale, zp = float(q.Scale(0)), int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0
    return TensorSpec(name=(tensor.Name() or b"").decode(), index=index, shape=shape,
                      dtype=DTYPES.get(tensor.Type(), f"type{tensor.Type()}"), scale=scale, zero_point=zp,
                      batch_axis=batch_axis_of(shape))


def io_specs(data: bytes) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Input and output specs of the main subgraph, named by its serving signature like
    edgekit.manifest.tensor_specs (the tensor name kept in ``tensor``)."""
    _, model = _model(data)
    try:
        g = model.Subgraphs(0)
        ins = [_spec(g.Tensors(i), i) for i in g.InputsAsNumpy().tolist()]
        outs = [_spec(g.Tensors(i), i) for i in g.OutputsAsNumpy().tolist()]
        in_names, out_names = _signature_names(model)
    except Exception as err:
        raise ModelLoadError(f"malformed TensorFlow Lite flatbuffer ({type(err).__name__})") from None
    return _named(ins, in_names), _named(outs, out_names)


def _signature_names(model) -> tuple[dict[int, str], dict[int, str]]:
    """{tensor index: signature key} for inputs and outputs of the one signature of subgraph 0 ({} otherwise)."""
    sigs = [model.SignatureDefs(i) for i in range(model.SignatureDefsLength())]
    if len(sigs) != 1 or sigs[0].SubgraphIndex() != 0:
        return {}, {}
    sig = sigs[0]
    return ({sig.Inputs(j).TensorIndex(): sig.Inputs(j).Name().decode() for j in range(sig.InputsLength())},
            {sig.Outputs(j).TensorIndex(): sig.Outputs(j).Name().decode() for j in range(sig.OutputsLength())})


def _named(specs: list[TensorSpec], names: dict[int, str]) -> list[TensorSpec]:
    return [dataclasses.replace(t, name=names[t.index], tensor=t.name) if names.get(t.index, t.name) != t.name else t
            for t in specs]


def custom_ops(data: bytes) -> list[str]:
    """Names of custom (and Flex 'Flex...') operators the model needs."""
    s, model = _model(data)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == s.BuiltinOperator.CUSTOM:
            names.append((code.CustomCode() or b"?").decode())
    return names


_schema = schema  # the old private name
