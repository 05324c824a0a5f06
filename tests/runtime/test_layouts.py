"""Inputs and outputs not batched on their first axis (runtime/layout.py), on TFLite: a small stateful model
made here with TensorFlow, x [batch, 4], state [2, batch, 3] (batched on axis 1) and gain, a float scalar
shared by the call; outputs y [batch, 3] and stateN [2, batch, 3]. The ONNX case (Silero VAD, a published
model) is tests/onnx/test_onnx_published.py."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.engine import open_model
from edgekit.errors import InputValidationError
from edgekit.manifest import batch_axis_of
from edgekit.runtime import EdgeModel
from edgekit.runtime.layout import Layout


@pytest.fixture(scope="module")
def stateful(tmp_path_factory):
    import tensorflow as tf

    rng = np.random.default_rng(0)

    class Cell(tf.Module):
        def __init__(self):
            self.w = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x"),
                                      tf.TensorSpec([2, None, 3], tf.float32, name="state"),
                                      tf.TensorSpec([], tf.float32, name="gain")])
        def __call__(self, x, state, gain):
            h = tf.tanh(tf.matmul(x, self.w) * gain + state[0] + 0.5 * state[1])
            return {"y": h, "stateN": tf.stack([h, state[0]])}

    cell = Cell()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([cell.__call__.get_concrete_function()], cell)
    path = tmp_path_factory.mktemp("layouts") / "stateful.tflite"
    path.write_bytes(conv.convert())
    return path


def test_the_batch_axis_read_from_a_shape():
    assert [batch_axis_of(s) for s in ([-1, 8, 8, 1], [1, 10], [2, -1, 128], [2, 1, 128], [], [896, 4])] == [
        0, 0, 1, 1, None, 0]
    state, shared = Layout(1), Layout(None)
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(3, 2, 4)  # three samples, batch-first
    assert np.array_equal(state.batch_first(state.to_model(x), 3), x)
    assert state.caller_form(x, sample=False).shape == (2, 3, 4)
    assert state.caller_form(x[:1], sample=True).shape == (2, 4)
    one = np.broadcast_to(np.float32(7), (3,))
    assert shared.to_model(one).shape == () and shared.caller_form(one, sample=False) == 7
    unknown = Layout(0, unknown=True)  # a file that says [-1, -1, -1]: the run shows where the 3 samples are
    assert unknown.batch_first(np.zeros((2, 3, 4)), 3).shape == (3, 2, 4) and unknown.axis == 1


@pytest.mark.full_env  # the stateful model is made here with TensorFlow (dev install only)
def test_tflite_state_and_scalar_inputs_equal_the_bare_session(stateful):
    bare = open_model(stateful)
    assert [(t.name, t.batch_axis) for t in bare.inputs] == [("state", 1), ("x", 0), ("gain", None)]
    rng = np.random.default_rng(1)
    state = np.zeros((2, 3, 3), np.float32)
    with EdgeModel.load(stateful) as model:
        for _ in range(4):  # three streams, the state carried
            x = rng.normal(size=(3, 4)).astype(np.float32)
            pred = model.predict({"x": x, "state": state, "gain": np.float32(0.7)})
            feeds = {"x": x, "state": state, "gain": np.array(0.7, np.float32)}
            arrays = [feeds[t.name] for t in bare.inputs]
            bare.resize([a.shape for a in arrays])
            for t, want in zip(bare.outputs, bare.run(arrays)):
                assert np.array_equal(pred[t.name], want)
            assert pred["stateN"].shape == (2, 3, 3) and pred.outputs[0].shape[0] == 3
            state = pred["stateN"]
        one = model.predict({"x": x[0], "state": state[:, 0], "gain": 0.7})  # one sample, no batch axes
        assert one["y"].shape == (3,) and one["stateN"].shape == (2, 3)
        with pytest.raises(InputValidationError, match="input 'gain': input has shape \\(3,\\); the model wants "
                                                       "one value of shape \\(\\) for the whole call"):
            model.predict({"x": x, "state": state, "gain": np.ones(3, np.float32)})


@pytest.mark.full_env  # made here with TensorFlow
def test_inputs_whose_batches_disagree_are_refused_at_load_in_one_line(tmp_path):
    """x [1, 10] and bias [4]: a fixed batch of one beside a fixed axis of 4 the file calls its first."""
    import tensorflow as tf

    from edgekit.errors import ModelLoadError

    class Odd(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 10], tf.float32, name="x"),
                                      tf.TensorSpec([4], tf.float32, name="bias")])
        def __call__(self, x, bias):
            return {"y": tf.reduce_sum(x, axis=1, keepdims=True) + bias[None, :]}

    odd = Odd()
    path = tmp_path / "odd.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([odd.__call__.get_concrete_function()],
                                                                     odd).convert())
    with pytest.raises(ModelLoadError) as err:
        EdgeModel.load(path)
    assert str(err.value).startswith(f"{path}: the inputs' batch axes disagree (")
    assert "run this model through edgekit.engine.open_model" in str(err.value) and "\n" not in str(err.value)
