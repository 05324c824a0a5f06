"""What a real published ONNX model needed before onnxruntime.quantization took it (edgekit/conversion/onnx.py
prepare): an opset-11 graph is upgraded to 13 (per-channel QDQ writes DequantizeLinear's axis, new in 13: the
quantized PaddleOCR classifier did not load otherwise), and quant_pre_process runs without its symbolic shape
inference when that asserts. A small opset-11 Conv model built here with onnx.helper shows the first."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgekit.conversion.onnx import prepare, quantize_onnx
from edgekit.engine.onnxrt import open_onnx
from edgekit.recipes import load_recipe


def _opset11_conv() -> bytes:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.normal(0, 0.1, 8).astype(np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8, 8, 8])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7).SerializeToString()


def test_an_opset_11_model_is_upgraded_so_its_per_channel_int8_loads_and_agrees():
    model = _opset11_conv()
    assert onnx.load_from_string(prepare(model)).opset_import[0].version == 13
    x = np.random.default_rng(1).uniform(0, 1, (64, 3, 8, 8)).astype(np.float32)
    data = quantize_onnx(model, load_recipe("int8").onnx, {"x": x})
    ref, out = (open_onnx(m).run([x])[0] for m in (model, data))
    assert 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - out) ** 2)) > 25  # int8, not garbage
    scales = [numpy_helper.to_array(i) for i in onnx.load_from_string(data).graph.initializer if i.name == "w_scale"]
    assert scales and scales[0].size == 8  # per channel
