"""What a .tflite file holds, read from its flatbuffer without TensorFlow or an interpreter.

``read_model_info`` walks the main subgraph: its tensors (shape, shape signature, dtype,
quantization, constant or not), its operators in execution order (builtin name, version,
custom code, the dtypes they compute in), the weight bytes and the activation arena as TFLite
and TFLite Micro would plan it (edgekit.engine.arena). It works on any .tflite, with or without
an edgekit manifest, and a hostile file gets a one-line ModelLoadError, never an IndexError.

Example:
    >>> info = load_model_info("digits-int8.tflite")      # doctest: +SKIP
    >>> info.histogram()[("CONV_2D", 3)]                  # doctest: +SKIP
    2
    >>> info.weight_bytes, info.arena_bytes               # doctest: +SKIP
    (...)
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ..fsutil import read_bytes
from .arena import ArenaPlan, plan_arena
from .tflite_file import DTYPES, is_tflite, schema

_ITEMSIZE = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "bool": 1, "int16": 2,
             "int8": 1, "float64": 8, "bfloat16": 2, "uint64": 8, "uint32": 4, "uint16": 2, "complex64": 8, "int4": 1}
FLOAT_DTYPES = ("float32", "float16", "float64", "bfloat16")
_INT_WEIGHTS = {"int8", "uint8", "int4"}


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]  # -1 marks a dynamic dimension
    dtype: str
    scale: float | None  # per-tensor quantization; None if not quantized or per-channel
    zero_point: int | None
    quant_channels: int  # number of scales: 0 unquantized, 1 per-tensor, >1 per-channel
    constant: bool  # holds data in the file (weights, biases, constant shapes)
    nbytes: int  # size at the static shape (dynamic dimensions counted as 1)

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape_signature)


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str  # BuiltinOperator name, or the custom code for custom ops
    version: int
    custom_code: str | None
    input_dtypes: tuple[str, ...]  # non-constant inputs (what the op computes on)
    output_dtypes: tuple[str, ...]
    weight_dtypes: tuple[str, ...]  # constant inputs
    inputs: tuple[int, ...] = ()  # tensor indices (optional inputs left out)
    outputs: tuple[int, ...] = ()

    @property
    def is_custom(self) -> bool:
        return self.custom_code is not None

    @property
    def is_flex(self) -> bool:
        """A select-TF op: it needs the Flex delegate (TensorFlow kernels) to run."""
        return bool(self.custom_code and self.custom_code.startswith("Flex"))

    @property
    def is_float(self) -> bool:
        """Computes in floating point: a non-constant input or an output is float."""
        return any(d in FLOAT_DTYPES for d in self.input_dtypes + self.output_dtypes)


@dataclass(frozen=True)
class ModelInfo:
    """The structure of one .tflite file. ``arena_bytes`` is an estimate: see edgekit.engine.arena."""

    size_bytes: int
    schema_version: int
    subgraph_count: int
    tensors: tuple[TensorInfo, ...]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    weight_bytes: int  # bytes of constant buffers the main subgraph uses
    arena_bytes: int  # TFLite's planned activation arena (edgekit.engine.arena), an estimate
    description: str
    min_runtime: str | None  # the converter's "min_runtime_version" metadata, if present
    arena_litert: ArenaPlan | None = None  # the arena as TFLite plans it (arena_bytes is its planned part)
    arena_tflm: ArenaPlan | None = None  # as TensorFlow Lite Micro plans it, with its persistent tail

    def arena_for(self, interpreter: str) -> ArenaPlan | None:
        """The plan for a profile's interpreter: TFLM's for ``tflite-micro``, TFLite's otherwise."""
        return self.arena_tflm if interpreter == "tflite-micro" else self.arena_litert

    def histogram(self) -> dict[tuple[str, int], int]:
        """{(op name, version): count}, most frequent first."""
        return dict(Counter((o.name, o.version) for o in self.ops).most_common())

    @property
    def custom_ops(self) -> tuple[str, ...]:
        return tuple(sorted({o.custom_code for o in self.ops if o.is_custom and not o.is_flex}))

    @property
    def flex_ops(self) -> tuple[str, ...]:
        return tuple(sorted({o.custom_code for o in self.ops if o.is_flex}))

    @property
    def dynamic_tensors(self) -> tuple[TensorInfo, ...]:
        return tuple(t for t in self.tensors if t.dynamic)

    @property
    def weight_format(self) -> str:
        """How the weights are stored, as a LiteRT user names it: float32, float16, hybrid (dynamic-range:
        int8 weights, float activations), int16x8, int8 (full integer) or none.

        Example: ``load_model_info("digits-dynamic.tflite").weight_format`` -> ``'hybrid'``
        """
        weights = {d for o in self.ops for d in o.weight_dtypes}
        if "float16" in weights:  # fp16 weights, dequantized to float32 when the interpreter loads them
            return "float16"
        # an op computing in float on integer weights, or weights dequantized at load (DEQUANTIZE of int8)
        if any(o.is_float and set(o.weight_dtypes) & _INT_WEIGHTS for o in self.ops):
            return "hybrid"
        if any("int16" in o.input_dtypes for o in self.ops):
            return "int16x8"
        if weights & _INT_WEIGHTS:
            return "int8"
        return "float32" if weights & set(FLOAT_DTYPES) else "none"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["weight_format"] = self.weight_format
        d["arena_caveat"] = self.arena_litert.caveat() if self.arena_litert else ""
        d.pop("tensors")
        d["tensor_count"] = len(self.tensors)
        d["histogram"] = [{"op": n, "version": v, "count": c} for (n, v), c in self.histogram().items()]
        d["custom_ops"], d["flex_ops"] = list(self.custom_ops), list(self.flex_ops)
        d["dynamic_tensors"] = [t.name for t in self.dynamic_tensors]
        for i, op in enumerate(self.ops):
            d["ops"][i]["is_float"] = op.is_float
        return d


def load_model_info(path: str | Path) -> ModelInfo:
    return read_model_info(read_bytes(path, ModelLoadError, "model file"), label=str(path))


def read_model_info(data: bytes, label: str = "<bytes>", *, tflm: bool = True) -> ModelInfo:
    """Parse ``data``; any structural fault, an index out of range included (``_check_references``),
    becomes one ModelLoadError naming ``label``. ``tflm=False`` leaves ``arena_tflm`` None (the load's
    memory check needs only TFLite's plan; a plan is a second walk of the graph, 0.7 s of a cold
    face-detector load on the emulated Pi)."""
    if len(data) < 16 or not is_tflite(data):
        raise ModelLoadError(f"{label}: not a TensorFlow Lite model (no TFL3 identifier); check the file")
    s = schema()
    try:
        return _walk(s, data, tflm)
    except ModelLoadError as err:
        raise ModelLoadError(f"{label}: {err}") from None
    except (IndexError, struct.error, ValueError, TypeError, AttributeError, KeyError, OverflowError,
            UnicodeDecodeError, MemoryError, RecursionError) as err:
        raise ModelLoadError(f"{label}: malformed TensorFlow Lite flatbuffer ({type(err).__name__} "
                             "while reading it); re-export or copy the file again") from None


class _Budget:
    """Bounds the walk by the file's size: a vector holds at most one 4-byte entry per 4 bytes,
    and all vectors together (they can overlap in a crafted file) at most one entry per byte.
    Without it a hostile length makes the walk spin over garbage for minutes."""

    def __init__(self, data: bytes):
        self.size, self.left = len(data), len(data) + 64

    def __call__(self, n: int, what: str) -> int:
        if n < 0 or n > self.size // 4 + 1:
            raise ModelLoadError(f"corrupt {what} count {n} in a {self.size}-byte file")
        self.left -= n
        if self.left < 0:
            raise ModelLoadError(f"the file's vectors add up to more entries than its {self.size} bytes can hold")
        return n


def _check_references(s, data: bytes) -> None:
    """Every index in any subgraph in range: operators' opcodes and tensors (inputs and intermediates
    may be -1, left out; outputs may not), tensors' buffers, subgraph and signature I/O. The
    interpreter checks the layout but not these (FACTS.md): an output of -1 crashes it."""
    count = _Budget(data)
    model = s.Model.GetRootAs(data, 0)
    n_sub = count(model.SubgraphsLength(), "subgraph")
    if n_sub < 1:
        raise ModelLoadError("the model has no subgraph")
    n_codes, n_buf = count(model.OperatorCodesLength(), "operator code"), count(model.BuffersLength(), "buffer")
    for k in range(n_sub):
        g = model.Subgraphs(k)
        n_t = count(g.TensorsLength(), "tensor")
        for i in range(n_t):
            _in_range(g.Tensors(i).Buffer(), n_buf, f"subgraph {k} tensor {i} buffer", "buffer")
        _in_range(_indices(g, "Inputs", count), n_t, f"subgraph {k} input", "tensor")
        _in_range(_indices(g, "Outputs", count), n_t, f"subgraph {k} output", "tensor")
        for i in range(count(g.OperatorsLength(), "operator")):
            o = g.Operators(i)
            _in_range(o.OpcodeIndex(), n_codes, f"subgraph {k} operator {i}", "opcode")
            # -1 marks an optional input (or intermediate) left out; an output must exist.
            _in_range(_indices(o, "Inputs", count), n_t, f"subgraph {k} operator {i} input", "tensor", optional=True)
            _in_range(_indices(o, "Outputs", count), n_t, f"subgraph {k} operator {i} output", "tensor")
            _in_range(_indices(o, "Intermediates", count), n_t, f"subgraph {k} operator {i} intermediate",
                      "tensor", optional=True)
    for j in range(count(model.SignatureDefsLength(), "signature")):
        sig = model.SignatureDefs(j)
        k = sig.SubgraphIndex()
        _in_range(k, n_sub, f"signature {j}", "subgraph")
        n_t = model.Subgraphs(k).TensorsLength()
        ios = [sig.Inputs(m) for m in range(count(sig.InputsLength(), "signature input"))]
        ios += [sig.Outputs(m) for m in range(count(sig.OutputsLength(), "signature output"))]
        _in_range([io.TensorIndex() for io in ios], n_t, f"signature {j}", "tensor")


def _indices(table, field: str, count: _Budget) -> list[int]:
    """An int vector of a flatbuffer table (``Inputs``, ``Outputs``...) as Python ints, bounded by the budget."""
    n = count(getattr(table, f"{field}Length")(), field.lower())
    return [int(v) for v in getattr(table, f"{field}AsNumpy")()] if n else []


def _in_range(indices, n: int, where: str, what: str, *, optional: bool = False) -> None:
    low = -1 if optional else 0
    for idx in [indices] if isinstance(indices, int) else indices:
        if not low <= idx < n:
            raise ModelLoadError(f"{where} refers to {what} {idx} of {n}: a corrupt or hostile file; "
                                 "re-export or copy it again")


def _walk(s, data: bytes, tflm: bool = True) -> ModelInfo:
    _check_references(s, data)  # so inspect and check refuse what the runtime's load refuses
    count = _Budget(data)
    model = s.Model.GetRootAs(data, 0)
    n_sub = count(model.SubgraphsLength(), "subgraph")
    if n_sub < 1:
        raise ModelLoadError("the model has no subgraph")
    g = model.Subgraphs(0)
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if k.isupper()}
    codes = []
    for i in range(count(model.OperatorCodesLength(), "operator code")):
        c = model.OperatorCodes(i)
        builtin = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
        custom = (c.CustomCode() or b"?").decode("utf-8", "replace") if builtin == s.BuiltinOperator.CUSTOM else None
        codes.append((custom or names.get(builtin, f"BUILTIN_{builtin}"), int(c.Version() or 1), custom))

    n_buf = count(model.BuffersLength(), "buffer")
    buffer_bytes: dict[int, int] = {}

    def buffer_size(b: int) -> int:
        if b not in buffer_bytes:
            buf = model.Buffers(b) if 0 <= b < n_buf else None
            size = 0
            if buf is not None:
                size = buf.DataLength() or int(buf.Size() or 0)  # Size(): data outside the flatbuffer (>2 GB files)
            buffer_bytes[b] = size
        return buffer_bytes[b]

    tensors, used_buffers = [], set()
    for i in range(count(g.TensorsLength(), "tensor")):
        t = g.Tensors(i)
        shape = tuple(int(v) for v in t.ShapeAsNumpy()) if count(t.ShapeLength(), "shape") else ()
        sig = (tuple(int(v) for v in t.ShapeSignatureAsNumpy())
               if count(t.ShapeSignatureLength(), "shape signature") else shape)
        dtype = DTYPES.get(t.Type(), f"type{t.Type()}")
        q = t.Quantization()
        channels = count(q.ScaleLength(), "scale") if q is not None else 0
        scale = zp = None
        if channels == 1:
            scale, zp = float(q.Scale(0)), int(q.ZeroPoint(0)) if q.ZeroPointLength() else 0
        constant = buffer_size(t.Buffer()) > 0
        if constant:
            used_buffers.add(t.Buffer())
        elements = 1
        for d in shape:
            elements *= max(int(d), 1)
        tensors.append(TensorInfo(index=i, name=(t.Name() or b"").decode("utf-8", "replace"), shape=shape,
                                  shape_signature=sig, dtype=dtype, scale=scale, zero_point=zp,
                                  quant_channels=int(channels), constant=constant,
                                  nbytes=elements * _ITEMSIZE.get(dtype, 4)))

    def tensor(idx: int) -> TensorInfo:
        if not 0 <= idx < len(tensors):
            raise ModelLoadError(f"an operator or I/O refers to tensor {idx} of {len(tensors)}")
        return tensors[idx]

    ops = []
    for i in range(count(g.OperatorsLength(), "operator")):
        o = g.Operators(i)
        ci = o.OpcodeIndex()
        if not 0 <= ci < len(codes):
            raise ModelLoadError(f"operator {i} uses opcode {ci} of {len(codes)}")
        ins = [int(v) for v in o.InputsAsNumpy()] if count(o.InputsLength(), "operator input") else []
        outs = [int(v) for v in o.OutputsAsNumpy()] if count(o.OutputsLength(), "operator output") else []
        ins_t = [tensor(v) for v in ins if v >= 0]  # -1: an optional input left out
        outs_t = [tensor(v) for v in outs if v >= 0]
        name, version, custom = codes[ci]
        ops.append(OpInfo(index=i, name=name, version=version, custom_code=custom,
                          input_dtypes=tuple(t.dtype for t in ins_t if not t.constant),
                          output_dtypes=tuple(t.dtype for t in outs_t),
                          weight_dtypes=tuple(t.dtype for t in ins_t if t.constant),
                          inputs=tuple(t.index for t in ins_t), outputs=tuple(t.index for t in outs_t)))

    inputs = tuple(tensor(int(v)) for v in (g.InputsAsNumpy() if g.InputsLength() else []))
    outputs = tuple(tensor(int(v)) for v in (g.OutputsAsNumpy() if g.OutputsLength() else []))
    weight_bytes = sum(buffer_size(b) for b in used_buffers)  # shared buffers count once
    litert, tflm = plan_arena(data, "litert"), (plan_arena(data, "tflm") if tflm else None)
    return ModelInfo(
        size_bytes=len(data), schema_version=int(model.Version()), subgraph_count=n_sub, tensors=tuple(tensors),
        inputs=inputs, outputs=outputs, ops=tuple(ops), weight_bytes=weight_bytes,
        arena_bytes=litert.planned_bytes, arena_litert=litert, arena_tflm=tflm,
        description=(model.Description() or b"").decode("utf-8", "replace"),
        min_runtime=_min_runtime(model, n_buf, count),
    )


def _min_runtime(model, n_buf: int, count: _Budget) -> str | None:
    for i in range(count(model.MetadataLength(), "metadata")):
        m = model.Metadata(i)
        if (m.Name() or b"") == b"min_runtime_version" and 0 <= m.Buffer() < n_buf:
            raw = model.Buffers(m.Buffer()).DataAsNumpy()
            if hasattr(raw, "tobytes"):
                return raw.tobytes().split(b"\0", 1)[0].decode("ascii", "replace") or None
    return None
