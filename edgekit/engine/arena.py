"""Plan a .tflite's activation arena the way the interpreters do, from the flatbuffer alone.

Both TFLite (ai-edge-litert) and TensorFlow Lite Micro give every non-constant tensor a lifetime
(from the operator that writes it to the last one that reads it, in the file's operator order) and
place the tensors in one arena, largest first, at the lowest offset no tensor alive at the same
time occupies. The arena is the highest offset reached: more than the peak of live bytes when
the placement fragments. The two planners differ in details this module copies:

- ``litert``: best-fit gaps, 64-byte alignment, graph inputs and outputs kept for the whole
  inference and placed first, RESHAPE-like ops sharing their input's buffer, kernel temporaries
  (CONV_2D's im2col, hybrid kernels' quantized input) planned at their op; weights a DEQUANTIZE or
  DENSIFY expands at load (fp16, sparse) are not in the arena (``expanded_weight_bytes``).
- ``tflm``: first-fit gaps, 16-byte alignment, every subgraph planned; plus the persistent tail
  TFLM keeps beside the plan: resource variables, per-channel quantization data, per-tensor and
  per-node bookkeeping (sized for a 64-bit build; a 32-bit MCU's structures are smaller).

What cannot be known from the file is named, not guessed: ``unmodelled`` lists the op kinds whose
kernel scratch is not modelled (custom ops, recurrent kernels...), and a dynamic-shape model is
planned at its file shape. bench/bench_arena.py measures both runtimes (docs/arena.md).

Example:
    >>> plan = plan_arena(model_bytes, "litert")          # doctest: +SKIP
    >>> plan.total_bytes, plan.unmodelled                 # doctest: +SKIP
    (1458176, ())
"""

from __future__ import annotations

from dataclasses import dataclass

from .tflite_file import DTYPES, schema

_ITEMSIZE = {"float32": 4, "float16": 2, "int32": 4, "uint8": 1, "int64": 8, "bool": 1, "int16": 2,
             "int8": 1, "float64": 8, "bfloat16": 2, "uint64": 8, "uint32": 4, "uint16": 2, "complex64": 8, "int4": 1}
# Ops whose builtin kernels allocate no scratch (or a few bytes) in either runtime.
_NO_SCRATCH = {
    "ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "POW", "RELU", "RELU6", "RELU_N1_TO_1",
    "LEAKY_RELU", "PRELU", "LOGISTIC", "TANH", "HARD_SWISH", "ELU", "GELU", "EXP", "LOG", "SQRT", "RSQRT", "ABS",
    "NEG", "SQUARE", "SIN", "COS", "FLOOR", "CEIL", "ROUND", "SOFTMAX", "LOG_SOFTMAX", "L2_NORMALIZATION",
    "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "L2_POOL_2D", "PAD", "PADV2", "MIRROR_PAD",
    "CONCATENATION", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V",
    "PACK", "UNPACK", "GATHER", "GATHER_ND", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "DEPTH_TO_SPACE",
    "SPACE_TO_DEPTH", "QUANTIZE", "DEQUANTIZE", "CAST", "SHAPE", "FILL", "ZEROS_LIKE", "ONES_LIKE", "TILE",
    "BROADCAST_TO", "ARG_MAX", "ARG_MIN", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL",
    "LOGICAL_AND", "LOGICAL_OR", "LOGICAL_NOT", "SELECT", "SELECT_V2", "WHERE", "FULLY_CONNECTED", "CONV_2D",
    "MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "BATCH_MATMUL", "DENSIFY", "VAR_HANDLE",
    "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE", "IF", "WHILE", "HARD_SWISH", "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND", "RANGE", "CUMSUM", "TOPK_V2", "ADD_N", "FLOOR_DIV", "FLOOR_MOD", "SQUARED_DIFFERENCE",
}  # CONV_2D, FULLY_CONNECTED, MEAN...: their scratch is modelled in _litert_scratch / _tflm_scratch
# TFLite shares the input's buffer with the output (ArenaPlanner's in-place ops) when nothing else reads it.
_IN_PLACE = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "BITCAST"}
# TFLM persistent bookkeeping on a 64-bit build, from its RecordingMicroAllocator: TfLiteEvalTensor 24 B
# per tensor, NodeAndRegistration 64 B per op, TfLiteTensor 64 B per graph input/output.
_TFLM_EVAL_TENSOR, _TFLM_NODE, _TFLM_IO_TENSOR = 24, 64, 64
# Greedy placement is quadratic in the buffers: past this many (no published model comes close; a crafted
# file can), the plan falls back to the peak of live bytes and says so, so inspect cannot be made to hang.
MAX_PLANNED_BUFFERS = 4000
# Per op, TFLM kernels keep an OpData struct in the persistent tail (a few words to ~100 B): 64 B fits the measured tails best.
_TFLM_OP_DATA = 64


@dataclass(frozen=True)
class ArenaPlan:
    """One runtime's planned arena. ``total_bytes`` is what to compare with a device's RAM or arena."""

    runtime: str  # litert | tflm
    planned_bytes: int  # the shared region: activations and kernel scratch, placed by the greedy planner
    peak_live_bytes: int  # the lower bound: the most bytes alive at one op (the planner's fragmentation on top)
    persistent_bytes: int  # tflm: variables, per-channel data, bookkeeping; litert: variables
    expanded_weight_bytes: int  # litert: weights DEQUANTIZE / DENSIFY expand at load (not in the arena)
    unmodelled: tuple[str, ...]  # op kinds whose kernel scratch is not known from the file
    dynamic: bool  # planned at the file's shape; the real arena follows the shapes set at run time
    too_many: bool = False  # over MAX_PLANNED_BUFFERS: planned_bytes is the peak of live bytes, not a placement

    @property
    def total_bytes(self) -> int:
        return self.planned_bytes + self.persistent_bytes

    @property
    def certain(self) -> bool:
        return not self.unmodelled and not self.dynamic and not self.too_many

    def caveat(self) -> str:
        """'' when the plan covers every op, else why it may be off, in a few words."""
        parts = []
        if self.unmodelled:
            parts.append(f"scratch of {', '.join(self.unmodelled)} not modelled")
        if self.dynamic:
            parts.append("dynamic shapes planned at the file's shape")
        if self.too_many:
            parts.append("too many tensors to place: the peak of live bytes, fragmentation not counted")
        return "; ".join(parts)


@dataclass
class _Tensor:
    size: int
    dtype: str
    shape: tuple[int, ...]
    constant: bool
    variable: bool
    dynamic: bool


@dataclass
class _Op:
    name: str
    inputs: list[int]
    outputs: list[int]
    options: object  # the builtin options table or None


def plan_arena(data: bytes, runtime: str = "litert") -> ArenaPlan:
    """Plan ``data`` (a .tflite already validated by tflite_info.read_model_info) for ``runtime``."""
    s = schema()
    model = s.Model.GetRootAs(data, 0)
    graphs = [_read_graph(s, model, k) for k in range(model.SubgraphsLength())]
    names = {op.name for g in graphs for op in g[1]}
    unmodelled = tuple(sorted(n for n in names if n not in _NO_SCRATCH and n != "TRANSPOSE_CONV"))
    dynamic = any(t.dynamic for t in graphs[0][0])
    if runtime == "tflm":
        planned = peak = 0
        too_many = False
        for tensors, ops, ins, outs in graphs:  # TFLM plans every subgraph; a called one runs inside its caller
            bufs = _lifetimes(tensors, ops, ins, outs, keep_inputs=False, scratch=_tflm_scratch, in_place=False)
            too_many = too_many or len(bufs) > MAX_PLANNED_BUFFERS
            planned = max(planned, _place(bufs, align=16, best_fit=False))
            peak = max(peak, _peak(bufs))
        return ArenaPlan("tflm", planned, peak, _tflm_persistent(graphs), 0, unmodelled, dynamic, too_many)
    tensors, ops, ins, outs = graphs[0]
    expanded = _expanded_weights(tensors, ops)
    for i in expanded:
        tensors[i].constant = True  # persistent, outside the arena: counted as weights
    bufs = _lifetimes(tensors, ops, ins, outs, keep_inputs=True, scratch=_litert_scratch, in_place=True)
    variables = sum(t.size for t in tensors if t.variable)
    return ArenaPlan("litert", _place(bufs, align=64, best_fit=True), _peak(bufs), variables,
                     sum(tensors[i].size for i in expanded), unmodelled, dynamic, len(bufs) > MAX_PLANNED_BUFFERS)


def _read_graph(s, model, k: int):
    g = model.Subgraphs(k)
    codes = []
    names = {v: n for n, v in vars(s.BuiltinOperator).items() if n.isupper()}
    for i in range(model.OperatorCodesLength()):
        c = model.OperatorCodes(i)
        b = max(c.BuiltinCode(), c.DeprecatedBuiltinCode())
        codes.append((c.CustomCode() or b"?").decode("utf-8", "replace") if b == s.BuiltinOperator.CUSTOM
                     else names.get(b, f"BUILTIN_{b}"))
    tensors = []
    for i in range(g.TensorsLength()):
        t = g.Tensors(i)
        shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        sig = tuple(int(v) for v in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else shape
        dtype = DTYPES.get(t.Type(), "float32")
        n = 1
        for d in shape:
            n *= max(d, 1)
        buf = model.Buffers(t.Buffer()) if 0 <= t.Buffer() < model.BuffersLength() else None
        constant = buf is not None and (buf.DataLength() or int(buf.Size() or 0)) > 0
        tensors.append(_Tensor(n * _ITEMSIZE.get(dtype, 4), dtype, shape, constant, bool(t.IsVariable()),
                               any(d < 0 for d in sig)))
    ops = []
    for i in range(g.OperatorsLength()):
        o = g.Operators(i)
        ins = [int(v) for v in o.InputsAsNumpy()] if o.InputsLength() else []
        outs = [int(v) for v in o.OutputsAsNumpy()] if o.OutputsLength() else []
        ops.append(_Op(codes[o.OpcodeIndex()], [v for v in ins if v >= 0], [v for v in outs if v >= 0],
                       _options(s, o, codes[o.OpcodeIndex()])))
    ins = [int(v) for v in g.InputsAsNumpy()] if g.InputsLength() else []
    outs = [int(v) for v in g.OutputsAsNumpy()] if g.OutputsLength() else []
    return tensors, ops, ins, outs


def _options(s, o, name: str):
    table = o.BuiltinOptions()
    if table is None or name not in ("CONV_2D", "CALL_ONCE", "IF", "WHILE"):
        return None
    cls = {"CONV_2D": s.Conv2DOptions, "CALL_ONCE": s.CallOnceOptions, "IF": s.IfOptions,
           "WHILE": s.WhileOptions}[name]
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _expanded_weights(tensors: list[_Tensor], ops: list[_Op]) -> set[int]:
    """Outputs of DEQUANTIZE / DENSIFY whose inputs are constant (or themselves expanded): TFLite
    evaluates them once at load into persistent buffers (fp16 and sparse weights)."""
    expanded: set[int] = set()
    for op in ops:
        if op.name in ("DEQUANTIZE", "DENSIFY") and op.inputs and \
                all(tensors[i].constant or i in expanded for i in op.inputs):
            expanded.update(op.outputs)
    return expanded


def _lifetimes(tensors, ops, ins, outs, *, keep_inputs: bool, scratch, in_place: bool) -> list[tuple[int, int, int]]:
    """(bytes, first op, last op) of every buffer to plan: activations, then per-op scratch."""
    end = max(len(ops) - 1, 0)
    first: dict[int, int] = {i: 0 for i in ins}
    last: dict[int, int] = {i: end for i in outs}
    if keep_inputs:
        last.update({i: end for i in ins})
    alias: dict[int, int] = {}  # output -> the input whose buffer it shares
    readers: dict[int, int] = {}
    for op in ops:
        for i in op.inputs:
            readers[i] = readers.get(i, 0) + 1
    for step, op in enumerate(ops):
        for i in op.outputs:
            first.setdefault(i, step)
        for i in op.inputs + op.outputs:
            last[i] = max(last.get(i, step), step)
        if in_place and op.name in _IN_PLACE and op.inputs and op.outputs:
            src = op.inputs[0]
            if readers.get(src) == 1 and src not in ins and src not in outs and not tensors[src].constant \
                    and op.outputs[0] not in outs:
                alias[op.outputs[0]] = alias.get(src, src)
    for out, src in alias.items():  # the shared buffer lives as long as either name
        last[src] = max(last.get(src, 0), last.get(out, 0))
    bufs = [(tensors[i].size, first[i], max(last.get(i, first[i]), first[i])) for i in first
            if i not in alias and not tensors[i].constant and not tensors[i].variable and tensors[i].size > 0]
    for step, op in enumerate(ops):
        bufs += [(n, step, step) for n in scratch(op, tensors) if n > 0]
    return bufs


def _litert_scratch(op: _Op, tensors: list[_Tensor]) -> list[int]:
    """Temporaries TFLite's builtin kernels plan into the arena for this op (bytes each)."""
    if op.name == "CONV_2D" and len(op.inputs) >= 2 and op.outputs:
        x, w, y = tensors[op.inputs[0]], tensors[op.inputs[1]], tensors[op.outputs[0]]
        if len(w.shape) != 4 or len(y.shape) != 4:
            return []
        _, kh, kw, cin = w.shape
        o = op.options
        strided = o is not None and (o.StrideH() != 1 or o.StrideW() != 1 or o.DilationHFactor() != 1
                                     or o.DilationWFactor() != 1)
        hybrid = x.dtype == "float32" and w.dtype in ("int8", "uint8")
        out = []
        if kh * kw > 1 or strided:  # im2col: every output pixel's receptive field unfolded
            out.append(max(y.shape[0], 1) * y.shape[1] * y.shape[2] * kh * kw * cin * (1 if hybrid else
                                                                                         _ITEMSIZE.get(x.dtype, 4)))
        if hybrid:  # the input quantized to int8, and int32 accumulators
            out += [x.size // 4, y.size]
        return out
    if op.name == "FULLY_CONNECTED" and len(op.inputs) >= 2 and op.outputs:
        x, w, y = tensors[op.inputs[0]], tensors[op.inputs[1]], tensors[op.outputs[0]]
        if x.dtype == "float32" and w.dtype in ("int8", "uint8"):
            return [x.size // 4, y.size]
        return []
    if op.name == "TRANSPOSE_CONV" and len(op.inputs) >= 3 and op.outputs:
        w, x, y = tensors[op.inputs[1]], tensors[op.inputs[2]], tensors[op.outputs[0]]
        if len(w.shape) == 4 and len(x.shape) == 4:  # col2im: input pixels x kernel x output channels
            return [x.shape[0] * x.shape[1] * x.shape[2] * w.shape[0] * w.shape[1] * w.shape[2] * 4]
        return []
    if op.name in ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD") and op.outputs:
        y = tensors[op.outputs[0]]
        return [y.size * (4 // max(_ITEMSIZE.get(y.dtype, 4), 1))]  # int32/float accumulators per output
    return []


def _tflm_scratch(op: _Op, tensors: list[_Tensor]) -> list[int]:
    """TFLM's reference kernels compute in place of im2col; only reductions and TRANSPOSE_CONV ask for scratch."""
    if op.name in ("MEAN", "SUM") and op.outputs and tensors[op.outputs[0]].dtype in ("int8", "int16"):
        return [tensors[op.outputs[0]].size * 4]
    if op.name == "TRANSPOSE_CONV" and op.outputs and tensors[op.outputs[0]].dtype in ("int8", "int16"):
        return [tensors[op.outputs[0]].size * 4]
    return []


def _tflm_persistent(graphs) -> int:
    """TFLM's tail: resource variables, per-channel quantization arrays, op data and bookkeeping."""
    n_tensors = sum(len(g[0]) for g in graphs)
    n_ops = sum(len(g[1]) for g in graphs)
    tail = n_tensors * _TFLM_EVAL_TENSOR + n_ops * (_TFLM_NODE + _TFLM_OP_DATA)
    tail += (len(graphs[0][2]) + len(graphs[0][3])) * _TFLM_IO_TENSOR
    for tensors, ops, _, _ in graphs:
        for op in ops:
            if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED") and op.outputs:
                y = tensors[op.outputs[0]]
                channels = y.shape[-1] if y.shape else 1
                tail += 8 * channels  # per-channel output multiplier and shift (int32 each)
            if op.name == "ASSIGN_VARIABLE" and len(op.inputs) >= 2:
                tail += _align(tensors[op.inputs[1]].size, 16)  # the resource variable's buffer
    return tail


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _peak(bufs: list[tuple[int, int, int]]) -> int:
    if not bufs:
        return 0
    horizon = max(b[2] for b in bufs) + 2
    delta = [0] * horizon
    for size, a, b in bufs:
        delta[a] += size
        delta[b + 1] -= size
    live = peak = 0
    for d in delta:
        live += d
        peak = max(peak, live)
    return peak


def _place(bufs: list[tuple[int, int, int]], *, align: int, best_fit: bool) -> int:
    if len(bufs) > MAX_PLANNED_BUFFERS:
        return _peak(bufs)
    return _greedy(bufs, align=align, best_fit=best_fit)


def _greedy(bufs: list[tuple[int, int, int]], *, align: int, best_fit: bool) -> int:
    """Greedy by size: largest first (ties by first use), each at the lowest (first fit) or tightest
    (best fit) gap among the buffers alive at the same time. Returns the arena's high-water mark."""
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last), kept sorted by offset
    top = 0
    for size, a, b in sorted(bufs, key=lambda x: (-x[0], x[1])):
        need = _align(size, align) if not best_fit else size
        offset, best, best_gap, cur = None, None, None, 0
        for off, sz, pa, pb in placed:
            if pb < a or pa > b:
                continue
            cand = _align(cur, align)
            if cand + need <= off:
                if not best_fit:
                    offset = cand
                    break
                gap = off - cand
                if best_gap is None or gap < best_gap:
                    best, best_gap = cand, gap
            cur = max(cur, off + sz)
        if offset is None:
            offset = best if best is not None else _align(cur, align)
        placed.append((offset, need, a, b))
        placed.sort()
        top = max(top, offset + need)
    return top
