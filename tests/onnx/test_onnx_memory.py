"""Policy(max_model_memory_mb) holds for .onnx too: ONNX Runtime has no arena to estimate before it
allocates, so the load probe measures what the session took (in its own process) and refuses over the limit."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from edgekit.errors import ModelLoadError
from edgekit.runtime import EdgeModel, Policy


@pytest.fixture(scope="module")
def greedy_onnx(tmp_path_factory):
    """A 200-byte graph whose first run needs ~160 MB: Expand a scalar to 40M floats, then sum them."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [1], [40_000_000])
    graph = helper.make_graph(
        [helper.make_node("Expand", ["x", "shape"], ["big"]),
         helper.make_node("ReduceSum", ["big"], ["y"], keepdims=1)],
        "greedy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])], initializer=[shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("greedy") / "greedy.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_a_session_over_the_memory_limit_is_refused_by_the_probe_in_one_line(greedy_onnx):
    # 600 MB resident here first: the probe is started from this process, and Linux carries a parent's peak
    # into a child's getrusage() peak across exec; the probe must count only what its own session took
    ballast = np.ones(600 << 20, np.uint8)
    with pytest.raises(ModelLoadError, match=r"refused by the load probe: its session took ~([\d.,]+) MB .*over "
                                             r"the 64\.0 MB limit \(Policy\(max_model_memory_mb") as err:
        EdgeModel.load(greedy_onnx, policy=Policy(on_load="raise", max_model_memory_mb=64))
    assert "\n" not in str(err.value)
    took = float(str(err.value).split("took ~")[1].split(" MB")[0].replace(",", ""))
    assert 150 <= took <= 500, took  # the 160 MB the graph needs (ONNX Runtime's arena rounds up), not the ballast
    del ballast
    with EdgeModel.load(greedy_onnx, policy=Policy(on_load="raise", max_model_memory_mb=1024)) as model:
        assert model.load_error is None
        assert float(model.predict(np.ones((1,), np.float32)).output.ravel()[0]) == pytest.approx(4e7, rel=1e-3)
