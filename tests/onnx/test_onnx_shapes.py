"""ONNX inputs whose shapes TFLite models rarely have: a dynamic last dimension ([batch, samples], audio of
any length). A real ONNX file built with onnx.helper, run on ONNX Runtime through EdgeModel."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def level_onnx(tmp_path_factory):
    """audio [N, T] -> level [N, 1]: the mean over T (ReduceMean, opset 13)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["N", "T"])
    y = helper.make_tensor_value_info("level", TensorProto.FLOAT, ["N", 1])
    graph = helper.make_graph([helper.make_node("ReduceMean", ["audio"], ["level"], keepdims=1, axes=[1])],
                              "level", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("shapes") / "level.onnx"
    onnx.save(model, path)
    return path


def test_edgemodel_takes_a_dynamic_last_dimension(level_onnx):
    from edgekit.runtime import EdgeModel

    model = EdgeModel.load(level_onnx)
    rng = np.random.default_rng(0)
    for shape in ((2, 100), (3, 37)):  # any length: no channel count to guard or monitor by
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        pred = model.predict(x)
        np.testing.assert_allclose(pred.output, x.mean(axis=1, keepdims=True), rtol=1e-5, atol=1e-6)
        assert pred.ok
    assert model.health()["inputs"]["audio"]["channels"][0]["max"] <= 1.0
