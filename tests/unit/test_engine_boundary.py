"""The engine boundary: edgekit reaches model files only through edgekit/engine/.

Read from the source (ast), so it holds for code no test happens to run: outside the engine
package no module imports an interpreter package or calls an interpreter method. The converter
side (tf.lite.TFLiteConverter, the quantization debugger) is TensorFlow's converter, not an
interpreter, and is not affected; nor are ONNX Runtime's graph rewriters (onnxruntime.quantization,
onnxruntime.transformers.float16, and the symbolic shape inference quant_pre_process runs), which
edgekit/conversion/onnx.py imports by their full names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "edgekit"
ENGINE = PACKAGE / "engine"

# Methods only an interpreter (TFLite) or an inference session (ONNX Runtime) has. ``invoke`` and
# ``run`` are left out: engine sessions have them too (no interpreter runs without set_tensor anyway).
INTERPRETER_METHODS = {
    "allocate_tensors", "get_input_details", "get_output_details", "get_tensor_details", "set_tensor",
    "get_tensor", "resize_tensor_input", "get_signature_runner", "get_signature_list",
    "_get_full_signature_list", "_get_ops_details", "InferenceSession", "Interpreter",
}
INTERPRETER_MODULES = ("ai_edge_litert.interpreter", "tflite_runtime", "onnxruntime")
CONVERTER_MODULES = ("onnxruntime.quantization", "onnxruntime.transformers.float16",  # rewrite graphs, run none
                     "onnxruntime.tools.symbolic_shape_infer")


def _sources():
    return sorted(p for p in PACKAGE.rglob("*.py") if ENGINE not in p.parents)


def violations(path: Path) -> list[str]:
    """What in ``path`` reaches an interpreter directly: 'line: what'."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in INTERPRETER_METHODS:
            found.append(f"{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Attribute) and node.attr == "lite" and isinstance(node.value, ast.Name) \
                and node.value.id == "tf" and _parent_attr(tree, node) == "Interpreter":
            found.append(f"{node.lineno}: tf.lite.Interpreter")
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names
                      if a.name.startswith(INTERPRETER_MODULES) and not a.name.startswith(CONVERTER_MODULES)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(INTERPRETER_MODULES) \
                and not node.module.startswith(CONVERTER_MODULES):
            found.append(f"{node.lineno}: from {node.module} import ...")
    return found


def _parent_attr(tree, child) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.value is child:
            return node.attr
    return None


def test_no_interpreter_api_outside_the_engine_package():
    bad = {str(p.relative_to(PACKAGE.parent)): v for p in _sources() if (v := violations(p))}
    assert bad == {}, "interpreter API called outside edgekit/engine/ (go through edgekit.engine):\n" + \
        "\n".join(f"  {f}: {', '.join(v)}" for f, v in bad.items())


@pytest.mark.parametrize("snippet, expect", [
    ("interp.set_tensor(0, x)", ["1: .set_tensor"]),
    ("from ai_edge_litert.interpreter import Interpreter", ["1: from ai_edge_litert.interpreter import ..."]),
    ("import onnxruntime as ort", ["1: import onnxruntime"]),
    ("s = tf.lite.Interpreter(model_path=p)", ["1: .Interpreter", "1: tf.lite.Interpreter"]),
    ("conv = tf.lite.TFLiteConverter.from_keras_model(m)", []),
    ("session.run([x])", []),
    ("import onnxruntime.quantization as q", []),
    ("from onnxruntime.quantization import quantize_static", []),
    ("from onnxruntime import quantization", ["1: from onnxruntime import ..."]),  # the package: say which part
])
def test_the_scan_sees_what_it_must(tmp_path, snippet, expect):
    """The scan itself: it catches each way in, and leaves the converter and sessions alone."""
    f = tmp_path / "m.py"
    f.write_text(snippet + "\n")
    assert sorted(violations(f)) == sorted(expect)


def test_the_engine_package_is_where_the_interpreter_is_called():
    """The scan finds the calls where they belong (so an empty result above is not a blind scan)."""
    assert violations(ENGINE / "tflite_interp.py")
