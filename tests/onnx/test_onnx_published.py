"""A real published multi-input ONNX model from a public wheel: Silero VAD (silero-vad 6.2.0 ships
silero_vad/data/silero_vad.onnx; inputs input [batch, samples], state [2, batch, 128], sr int64 scalar;
outputs output, stateN). Fetched at test time into ~/.cache/edgekit/published (tests/published_models.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.engine import open_model

WHEEL = ("silero-vad", "6.2.0", {"silero_vad": "silero_vad/data/silero_vad.onnx"})


@pytest.fixture(scope="module")
def silero():
    import published_models as published

    try:
        return published.fetch(*WHEEL)["silero_vad"]
    except RuntimeError as err:  # the registry must be reachable (it is for CI): fail, never skip silently
        pytest.fail(str(err))


def _audio(n_chunks: int) -> list[np.ndarray]:
    """16 kHz chunks of 512 samples: a quiet hiss, then a voiced-like harmonic tone, seeded."""
    rng = np.random.default_rng(0)
    t = np.arange(512 * n_chunks) / 16000
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 540, 720), 1))
    x = 0.01 * rng.standard_normal(t.size) + np.where(t > t[-1] / 2, 0.3 * tone, 0.0)
    return [c.astype(np.float32)[None, :] for c in np.split(x, n_chunks)]


def _stream(run, chunks) -> list[np.ndarray]:
    state, sr, outs = np.zeros((2, 1, 128), np.float32), np.array(16000, np.int64), []
    for chunk in chunks:
        prob, state = run({"input": chunk, "state": state, "sr": sr})
        outs.append(prob)
    return outs


def test_silero_vad_through_the_engine_equals_bare_onnxruntime(silero):
    import onnxruntime as ort

    session = open_model(silero, threads=1)  # structure check and the crash probe, then ONNX Runtime
    assert [(t.name, t.shape, t.dtype) for t in session.inputs] == [
        ("input", (-1, -1), "float32"), ("state", (2, -1, 128), "float32"), ("sr", (), "int64")]
    assert [t.name for t in session.outputs] == ["output", "stateN"]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    bare = ort.InferenceSession(str(silero), sess_options=opts, providers=["CPUExecutionProvider"])
    chunks = _audio(12)
    ours = _stream(session.run, chunks)
    theirs = _stream(lambda feeds: bare.run(None, feeds), chunks)
    for a, b in zip(ours, theirs):
        assert np.array_equal(a, b)
    probs = np.concatenate(ours).ravel()
    assert probs.shape == (12,) and ((probs >= 0) & (probs <= 1)).all()
    assert {op.name for op in session.ops()} >= {"If"}  # the graph is read: control flow and all


def test_edgemodel_refuses_inputs_without_a_leading_batch_axis_in_one_line(silero):
    from edgekit.errors import ModelLoadError
    from edgekit.runtime import EdgeModel

    with pytest.raises(ModelLoadError) as err:
        EdgeModel.load(silero)
    assert str(err.value) == (f"{silero}: EdgeModel needs every input to lead with the batch axis; "
                              "state [2, -1, 128], sr [] do not: run this model through edgekit.engine.open_model "
                              "(no guard) for now")
