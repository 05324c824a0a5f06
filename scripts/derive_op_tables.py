"""Derive the op tables in edgekit/targets/data/ from the real interpreter packages.

For every builtin operator of the TFLite schema (and a list of known custom op names),
build a one-op model at version 1, 2, 3, ... and ask the interpreter to construct it.
"Didn't find op for builtin opcode 'X' version 'N'" (or "Encountered unresolved custom op")
means that interpreter has no kernel for it; anything else means it has one.
The highest version that resolves is that interpreter's max version of the op.

Each package runs in its own child process (tflite-runtime and ai-edge-litert cannot share
one); a child that crashes on an op is restarted after that op, and the op is recorded as
unknown. Run from the repo root:

    PYTHONPATH=$PWD /work/main/.venv/bin/python scripts/derive_op_tables.py

It rewrites edgekit/targets/data/ops-<package>.toml (about a minute per package on 2 cores).
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "edgekit" / "targets" / "data"
MAX_VERSION = 30
# Custom op names seen in published models or registered by some TFLite build.
# Custom ops XNNPACK (on by default in ai-edge-litert) runs itself: they have no builtin kernel, so
# they load only when XNNPACK takes the node (FACTS.md: ai-edge-litert 2.3.0 loaded a published
# segmentation model using Convolution2DTransposeBias; tflite-runtime 2.14 lacks it).
XNNPACK_CUSTOM = ("Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D")
CUSTOM_CANDIDATES = (
    "TFLite_Detection_PostProcess", "Mfcc", "AudioSpectrogram", "Convolution2DTransposeBias",
    "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "TransformLandmarks", "TransformTensorBilinear",
    "Landmarks2TransformMatrix", "NumericVerify", "RandomStandardNormal", "RandomUniform",
    "Multinomial", "FlexAddV2", "edgetpu-custom-op", "CIRCULAR_BUFFER",
)
PACKAGES = {"tflite-runtime": "tflite_runtime.interpreter", "ai-edge-litert": "ai_edge_litert.interpreter"}


def one_op_model(builtin: int, version: int, custom: str | None = None) -> bytes:
    from ai_edge_litert import schema_py_generated as s
    from ai_edge_litert.tools import flatbuffer_utils as fu

    code = s.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, s.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
    code.version = version
    if custom:
        code.customCode = custom
    tensors = []
    for i in range(2):
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = [1, 4], s.TensorType.FLOAT32, 0, f"t{i}"
        tensors.append(t)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    g = s.SubGraphT()
    g.tensors, g.operators, g.inputs, g.outputs = tensors, [op], [0], [1]
    m = s.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers = 3, [code], [g], [s.BufferT()]
    return bytes(fu.convert_object_to_bytearray(m))


def child(package: str, start: int) -> None:
    """Print one JSON line per op: [name, max_version]; run in its own process."""
    import importlib

    mod = importlib.import_module(PACKAGES[package])
    from ai_edge_litert import schema_py_generated as s

    kw = {"experimental_op_resolver_type": mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}

    def resolves(data: bytes, allocate: bool = False) -> bool:
        # Builtins resolve when the interpreter is built; custom ops only on allocate_tensors,
        # with the default resolver (ai-edge-litert registers some custom ops there only).
        try:
            interp = mod.Interpreter(model_content=data, **({} if allocate else kw))
            if allocate:
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            text = str(err)
            if any(m in text for m in ("Didn't find op for builtin opcode", "unresolved custom op", "Flex delegate")):
                return False
        return True

    items = _items(s)
    for i in range(start, len(items)):
        name, builtin, custom = items[i]
        print(json.dumps(["start", i]), flush=True)
        if custom:
            found = 1 if resolves(one_op_model(builtin, 1, custom), allocate=True) else 0
        else:
            found = 0
            for v in range(1, MAX_VERSION + 1):
                if not resolves(one_op_model(builtin, v)):
                    break
                found = v
        print(json.dumps([name, found]), flush=True)


def _items(s) -> list[tuple[str, int, str | None]]:
    skip = {"CUSTOM", "DELEGATE", "PLACEHOLDER_FOR_GREATER_OP_CODES"}
    ops = sorted((v, k) for k, v in vars(s.BuiltinOperator).items() if k.isupper() and k not in skip)
    return [(k, v, None) for v, k in ops] + [(c, s.BuiltinOperator.CUSTOM, c) for c in CUSTOM_CANDIDATES]


def derive(package: str) -> tuple[dict[str, int], dict[str, bool], list[str]]:
    builtins: dict[str, int] = {}
    customs: dict[str, bool] = {}
    crashed: list[str] = []
    from ai_edge_litert import schema_py_generated as s

    items = _items(s)
    start = 0
    while start < len(items):
        proc = subprocess.run([sys.executable, __file__, "--child", package, str(start)],
                              capture_output=True, text=True)
        current = start
        for line in proc.stdout.splitlines():
            a, b = json.loads(line)
            if a == "start":
                current = b
                continue
            if items[current][2]:
                customs[a] = bool(b)
            else:
                builtins[a] = b
            current += 1
        if proc.returncode == 0:
            break
        # A custom kernel that crashes on the empty test options exists (an absent one is refused
        # cleanly); a builtin that crashes is recorded and left out of the table.
        name, _, custom = items[current]
        if custom:
            customs[name] = True
        crashed.append(name)
        start = current + 1
    return builtins, customs, crashed


def write(package: str) -> Path:
    version = importlib.metadata.version(package)
    builtins, customs, crashed = derive(package)
    lines = [
        f"# Builtin operators and max versions that {package} {version} resolves, and the custom ops it has.",
        "# Derived, not typed: scripts/derive_op_tables.py built a one-op model per op and version and",
        f"# asked {package}'s Interpreter to construct it (\"Didn't find op for builtin opcode\" = no kernel).",
        "# Regenerate with: PYTHONPATH=$PWD python scripts/derive_op_tables.py",
        f'package = "{package}"',
        f'version = "{version}"',
        "# crashed_probe: the child died on these (custom kernels that crash on empty options are present).",
        f"crashed_probe = {json.dumps(crashed)}",
        "",
        "[max_version]",
    ]
    lines += [f"{name} = {v}" for name, v in sorted(builtins.items()) if v > 0]
    lines += ["", "[custom_ops]", f"present = {json.dumps(sorted(c for c, ok in customs.items() if ok))}",
              f"absent = {json.dumps(sorted(c for c, ok in customs.items() if not ok))}",
              "# Not derived: custom ops the XNNPACK delegate runs itself when it takes the node (see the script).",
              f"xnnpack = {json.dumps(list(XNNPACK_CUSTOM) if package == 'ai-edge-litert' else [])}", ""]
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"ops-{package}-{version.rsplit('.', 1)[0]}.toml"
    path.write_text("\n".join(lines))
    return path


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        for pkg in sys.argv[1:] or list(PACKAGES):
            print(write(pkg))
