"""The compatibility rules: each looks at a ModelInfo and a DeviceProfile and returns Findings.

One finding per reason, each one line: what will not run (or will fall back) and what to do.
Severity ``error`` means the model will not run on the target as it is (check exits 1);
``warning`` means it runs, but partly on a slower path or only after a step edgekit cannot
check (edgetpu_compiler); ``info`` is a fact worth knowing.

Example:
    >>> findings = op_versions(info, profile)      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

from ..devices import DeviceProfile
from ..engine.tflite_info import ModelInfo, OpInfo
from .optables import interpreter_table, interpreter_tables, load_table

ERROR, WARNING, INFO = "error", "warning", "info"
# ai-edge-litert's own resident memory once imported (FACTS.md: about 35 MB RSS).
INTERPRETER_RSS_MB = 35.0


@dataclass(frozen=True)
class Finding:
    severity: str  # error | warning | info
    code: str  # float-op, unsupported-op, op-version, custom-op, flex-op, dynamic-shape, memory, size, ...
    message: str

    def line(self) -> str:
        return f"{self.severity:7} {self.code:15} {self.message}"


def _names(ops: list[OpInfo], limit: int = 4) -> str:
    """'CONV_2D x2, SOFTMAX' for a list of ops (first few kinds, with counts)."""
    counts: dict[str, int] = {}
    for o in ops:
        counts[o.name] = counts.get(o.name, 0) + 1
    parts = [f"{n} x{c}" if c > 1 else n for n, c in list(counts.items())[:limit]]
    more = len(counts) - limit
    return ", ".join(parts) + (f" and {more} more kinds" if more > 0 else "")


def _kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB"


def flex_ops(info: ModelInfo, profile: DeviceProfile) -> list[Finding]:
    if not info.flex_ops:
        return []
    return [Finding(ERROR, "flex-op", f"select-TF ops {', '.join(info.flex_ops)}: they need the Flex delegate "
                    "(TensorFlow's kernels), which no interpreter package on the device has; re-convert without "
                    "select_tf_ops (replace the layer) or ship the Flex delegate with the app")]


def custom_ops(info: ModelInfo, profile: DeviceProfile) -> list[Finding]:
    out = []
    table = interpreter_table(profile.interpreter, profile.compat)
    tflm = load_table("tflm") if profile.interpreter == "tflite-micro" else None
    for code in info.custom_ops:
        if code == "edgetpu-custom-op":
            sev = INFO if profile.accelerator == "edgetpu" else ERROR
            out.append(Finding(sev, "custom-op", "edgetpu-custom-op: already compiled for the Edge TPU; it runs only "
                               "with libedgetpu" + ("" if sev == INFO else f", not on {profile.name}")))
        elif tflm is not None:
            if code not in tflm.custom_ops:
                out.append(Finding(ERROR, "custom-op", f"custom op {code}: TensorFlow Lite Micro registers no kernel "
                                   "for it; register your own with MicroMutableOpResolver::AddCustom or re-convert "
                                   "without it"))
        elif table is not None and code in table.xnnpack_custom_ops:
            out.append(Finding(WARNING, "custom-op", f"custom op {code}: {table.title} has no builtin kernel; it runs "
                               "only when XNNPACK takes the node (keep the default delegates on)"))
        elif table is not None and code not in table.custom_ops:
            elsewhere = [o.title for o in interpreter_tables() if code in o.custom_ops | o.xnnpack_custom_ops]
            where = (f"{', '.join(elsewhere)} has one: use it, or register the op in the app" if elsewhere
                     else "no standard interpreter package has one: register it in the app or re-convert without it")
            out.append(Finding(ERROR, "custom-op", f"custom op {code}: {table.title} has no kernel for it; {where}"))
    return out


def op_versions(info: ModelInfo, profile: DeviceProfile) -> list[Finding]:
    """Builtin ops (and versions) the target's interpreter package does not resolve."""
    table = interpreter_table(profile.interpreter, profile.compat)
    if table is None:
        return []  # TensorFlow Lite Micro does not check op versions; op_set covers it
    out = []
    seen = set()
    for (name, version), _count in info.histogram().items():
        op = next(o for o in info.ops if o.name == name and o.version == version)
        if op.is_custom or (name, version) in seen:
            continue
        seen.add((name, version))
        top = table.max_version.get(name)
        if top is None:
            out.append(Finding(ERROR, "unsupported-op", f"{name}: {table.title} has no kernel for this builtin op; "
                               "re-convert replacing the layer"))
        elif version > top:
            fix = ("re-convert with --compat tflite-runtime-2.14" if table.name.startswith("ops-tflite-runtime")
                   else f"re-convert with a TensorFlow matching {table.title}")
            out.append(Finding(ERROR, "op-version", f"{name} v{version} is newer than {table.title} runs "
                               f"(max v{top}); {fix}"))
    return out


def op_set(info: ModelInfo, profile: DeviceProfile) -> list[Finding]:
    """Ops outside the accelerator's (Edge TPU) or runtime's (TFLM) supported set."""
    if not profile.op_set:
        return []
    table = load_table(profile.op_set)
    # Float-I/O conversions at the graph's edges are reported once, by int8_only.
    outside = [o for o in info.ops if not o.is_custom and o.name not in table.ops
               and not (profile.int8_only and _is_edge_io_convert(o, info))]
    out = []
    if outside:
        if profile.accelerator == "edgetpu":
            out.append(Finding(WARNING, "cpu-fallback", f"{_names(outside)} not in the {table.title} op set: these "
                               "ops (and the compiler may cut the graph there) run on the host CPU; use supported "
                               "layers, or a static batch size (SHAPE/PACK come from a dynamic batch)"))
        else:
            out.append(Finding(ERROR, "unsupported-op", f"{_names(outside)} not in the {table.title} op set, and "
                               "there is no fallback on the device; replace those layers"))
    for name in sorted({o.name for o in info.ops} & set(table.limits)):
        out.append(Finding(INFO, "op-limit", f"{table.title} limit for {name}: {table.limits[name]}"))
    return out


def _is_edge_io_convert(op: OpInfo, info: ModelInfo) -> bool:
    """QUANTIZE of a model input / DEQUANTIZE into a model output (an int8 model with float I/O)."""
    if op.name == "QUANTIZE":
        return bool(set(op.inputs) & {t.index for t in info.inputs})
    return op.name == "DEQUANTIZE" and bool(set(op.outputs) & {t.index for t in info.outputs})


def int8_only(info: ModelInfo, profile: DeviceProfile) -> list[Finding]:
    if not profile.int8_only:
        return []
    not_int8 = [o for o in info.ops if not o.is_custom and (o.is_float or "int16" in o.input_dtypes + o.output_dtypes)
                and not _is_edge_io_convert(o, info)]
    edges = [o for o in info.ops if _is_edge_io_convert(o, info) and o.is_float]
    out = []
    if not_int8:
        kind = "float" if any(o.is_float for o in not_int8) else "int16"
        out.append(Finding(ERROR, "float-op", f"{len(not_int8)} {kind} ops ({_names(not_int8)}): {profile.name} runs "
                           "only fully int8-quantized models; re-convert with --recipe int8 and calibration data"))
    if edges:
        out.append(Finding(WARNING, "cpu-fallback", f"{_names(edges)} at the model's float input/output run on the "
                           "host CPU; --recipe int8 (int8 in and out) keeps the whole graph on the accelerator"))
    return out


def static_shapes(info: ModelInfo, profile: DeviceProfile) -> list[Finding]:
    dyn = info.dynamic_tensors
    if not dyn:
        return []
    t = dyn[0]
    shown = f"'{t.name}' {list(t.shape_signature)}" + (f" and {len(dyn) - 1} more" if len(dyn) > 1 else "")
    if profile.needs_static_shapes:
        return [Finding(ERROR, "dynamic-shape", f"dynamic shapes ({shown}): {profile.name} needs static ones; "
                        "re-convert with a fixed batch: edgekit convert --batch-size 1")]
    return [Finding(INFO, "dynamic-shape", f"dynamic shapes ({shown}): the interpreter resizes them at run time")]


def _arena(info: ModelInfo, profile: DeviceProfile) -> tuple[int, str]:
    """The arena the target's interpreter would plan (bytes), and ' (why it may be off)' or ''."""
    plan = info.arena_for(profile.interpreter)
    if plan is None:
        return info.arena_bytes, ""
    return plan.total_bytes, (f" ({plan.caveat()})" if plan.caveat() else "")


def memory(info: ModelInfo, profile: DeviceProfile) -> list[Finding]:
    """Weights plus the planned activation arena (edgekit.engine.arena) against the device's flash/RAM
    and budgets. A plan with ops whose scratch is unknown says so in the finding."""
    out = []
    float_weights = any(d in ("float32", "float16") for o in info.ops for d in o.weight_dtypes)
    shrink = ("quantize (--recipe int8 stores weights in a quarter of fp32's bytes) or shrink the model"
              if float_weights else "shrink the model (fewer or narrower layers, or prune)")
    if profile.max_size_kb and info.size_bytes > profile.max_size_kb * 1024:
        what = "flash budget" if profile.interpreter == "tflite-micro" else "size budget"
        out.append(Finding(ERROR, "size", f"the file is {_kb(info.size_bytes)}, over the {what} of "
                           f"{profile.max_size_kb:,.0f} KB; {shrink}"))
    arena, caveat = _arena(info, profile)
    if profile.interpreter == "tflite-micro":
        if profile.arena_kb and arena > profile.arena_kb * 1024:
            out.append(Finding(ERROR, "arena", f"planned tensor arena {_kb(arena)}{caveat} exceeds the "
                               f"{profile.arena_kb:,.0f} KB arena; use smaller inputs or feature maps" + ("" if not float_weights
                               else ", or --recipe int8 (a quarter of the activation bytes)")))
        ram = profile.memory_mb * 1024 * 1024
        if arena > ram:
            out.append(Finding(ERROR, "memory", f"planned arena {_kb(arena)}{caveat} exceeds the device's "
                               f"{_kb(ram)} RAM"))
        elif caveat and not out:
            out.append(Finding(INFO, "arena", f"planned tensor arena {_kb(arena)} is an estimate{caveat}: "
                               "measure it on the board"))
        return out
    # fp16 or sparse weights are expanded to float32 when the interpreter loads them: that is RAM too.
    expanded = info.arena_litert.expanded_weight_bytes if info.arena_litert else 0
    weights = info.weight_bytes + expanded
    wtext = f"weights {_kb(info.weight_bytes)}" + (f" (+{_kb(expanded)} expanded at load)" if expanded else "")
    need = weights + arena
    ram = profile.memory_mb * 1024 * 1024
    if need > ram:
        out.append(Finding(ERROR, "memory", f"{wtext} + arena {_kb(arena)}{caveat} "
                           f"exceed the device's {profile.memory_mb:,.2f} MB RAM; {shrink}"))
    elif profile.max_memory_mb and need / 2**20 + INTERPRETER_RSS_MB > profile.max_memory_mb:
        out.append(Finding(WARNING, "memory", f"{wtext} + arena ({need / 2**20:,.1f} MB{caveat}) + the "
                           f"interpreter (~{INTERPRETER_RSS_MB:g} MB) may exceed the {profile.max_memory_mb:g} MB "
                           "budget; measure with edgekit profile"))
    return out


def edgetpu_extras(info: ModelInfo, profile: DeviceProfile) -> list[Finding]:
    if profile.accelerator != "edgetpu":
        return []
    out = []
    if info.subgraph_count > 1:
        out.append(Finding(WARNING, "cpu-fallback", f"{info.subgraph_count} subgraphs: edgetpu_compiler maps only "
                           "the main one (\"More than one subgraph is not supported\")"))
    if "edgetpu-custom-op" not in info.custom_ops:
        out.append(Finding(WARNING, "compile", "the Edge TPU needs the file compiled by edgetpu_compiler "
                           "(not checked here); edgekit's checks cover the op set and int8 rule"))
    return out


def gpu_not_used(info: ModelInfo, profile: DeviceProfile) -> list[Finding]:
    if profile.accelerator != "gpu":
        return []
    return [Finding(INFO, "cpu-path", f"checked for {profile.interpreter} on the CPU cores: the GPU needs another "
                    f"runtime (see edgekit targets {profile.name})")]


ALL_RULES = (flex_ops, custom_ops, op_versions, op_set, int8_only, static_shapes, memory, edgetpu_extras,
             gpu_not_used)
