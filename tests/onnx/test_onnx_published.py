"""A real published multi-input ONNX model from a public wheel: Silero VAD (silero-vad 6.2.0 ships
silero_vad/data/silero_vad.onnx; inputs input [batch, samples], state [2, batch, 128] (a recurrent state,
batched on axis 1), sr an int64 scalar (no batch axis); outputs output [batch, 1] and stateN, the next
state). Fetched at test time into ~/.cache/edgekit/published (tests/published_models.py).

The audio is synthetic (no public wheel ships speech): tests/published_models.speech_like, voiced
"syllables" and pauses over a hiss, which Silero scores as speech in about half of the chunks."""

from __future__ import annotations

import json

import numpy as np
import pytest

import published_models as published
from edgekit.cli import main
from edgekit.engine import open_model
from edgekit.manifest import Manifest
from edgekit.runtime import EdgeModel, Policy


@pytest.fixture(scope="module")
def silero():
    try:
        return published.fetch(*published.SILERO)["silero_vad"]
    except RuntimeError as err:  # the registry must be reachable (it is for CI): fail, never skip silently
        pytest.fail(str(err))


@pytest.fixture(scope="module")
def adopted(silero, tmp_path_factory):
    """A copy of the file adopted by ``edgekit adopt`` on 300 streamed chunks, with call.npz (one held-out
    call in the model's own layout) beside it: published_models.adopted_silero."""
    return published.adopted_silero(tmp_path_factory.mktemp("silero"))


def _bare(path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _stream(run, windows, state) -> list[tuple[np.ndarray, np.ndarray]]:
    """(probability, next state) per window, the state carried from call to call as a caller does."""
    out, sr = [], np.array(16000, np.int64)
    for w in windows:
        prob, state = run({"input": w, "state": state, "sr": sr})
        out.append((prob, state))
    return out


def test_silero_vad_through_the_engine_equals_bare_onnxruntime(silero):
    session = open_model(silero, threads=1)  # structure check and the crash probe, then ONNX Runtime
    assert [(t.name, t.shape, t.dtype, t.batch_axis) for t in session.inputs] == [
        ("input", (-1, -1), "float32", 0), ("state", (2, -1, 128), "float32", 1), ("sr", (), "int64", None)]
    assert [t.name for t in session.outputs] == ["output", "stateN"]
    windows = published.silero_windows(published.speech_like(12, seed=0))[:, None]
    zero = np.zeros((2, 1, 128), np.float32)
    bare = _bare(silero)
    ours = _stream(session.run, windows, zero)
    theirs = _stream(lambda feeds: bare.run(None, feeds), windows, zero)
    for (a, sa), (b, sb) in zip(ours, theirs):
        assert np.array_equal(a, b) and np.array_equal(sa, sb)
    assert {op.name for op in session.ops()} >= {"If"}  # the graph is read: control flow and all


def test_edgemodel_equals_bare_onnxruntime_with_the_state_carried(silero):
    """No manifest: the batch axes come from the file (state 1, sr none) and stateN's from the first run."""
    bare = _bare(silero)
    windows = published.silero_windows(published.speech_like(24, seed=5))
    with EdgeModel.load(silero, num_threads=1) as model:
        assert model.input_names == ["input", "state", "sr"] and model.output_names == ["output", "stateN"]

        def guarded(feeds):
            pred = model.predict(feeds)
            return pred["output"], pred["stateN"]

        zero = np.zeros((2, 1, 128), np.float32)
        ours = _stream(guarded, windows[:, None], zero)  # batches of one, in the model's own layout
        theirs = _stream(lambda f: bare.run(None, f), windows[:, None], zero)
        for (a, sa), (b, sb) in zip(ours, theirs):
            assert a.shape == (1, 1) and sa.shape == (2, 1, 128)
            assert np.array_equal(a, b) and np.array_equal(sa, sb)
        probs = np.array([float(a[0, 0]) for a, _ in ours])
        assert 0.1 < (probs > 0.5).mean() < 0.9  # the synthetic speech is heard, the pauses are not

        # one sample without its batch axis: input (576,), state (2, 128), sr a Python int
        one = model.predict({"input": windows[3], "state": ours[2][1][:, 0], "sr": 16000})
        assert one["stateN"].shape == (2, 128) and np.array_equal(one["output"], ours[3][0][0])
        # three streams at once: state [2, 3, 128]; each equals its own stream run alone
        states = np.stack([ours[i][1][:, 0] for i in (0, 5, 9)], axis=1)
        three = model.predict({"input": windows[[1, 6, 10]], "state": states, "sr": np.int64(16000)})
        b_prob, b_state = bare.run(None, {"input": windows[[1, 6, 10]], "state": states,
                                          "sr": np.array(16000, np.int64)})
        assert three["stateN"].shape == (2, 3, 128) and three.outputs[1].shape == (3, 2, 128)
        assert np.array_equal(three["output"], b_prob) and np.array_equal(three["stateN"], b_state)
        assert model.health()["samples"] == 24 + 1 + 3


def test_bad_state_and_sample_rate_are_refused_in_one_line(silero):
    with EdgeModel.load(silero, num_threads=1) as model:
        window = published.silero_windows(published.speech_like(2, seed=0))[1]
        cases = [({"input": window, "state": np.zeros((2, 2, 128), np.float32), "sr": np.array([16000, 16000])},
                  "input 'sr': input has shape (2,); the model wants one value of shape () for the whole call"),
                 ({"input": window[None], "state": np.zeros((2, 2, 128), np.float32), "sr": 16000},
                  "inputs disagree on the batch (input batch of 1, state batch of 2)"),
                 ({"input": window, "state": np.zeros((3, 128), np.float32), "sr": 16000},
                  "input 'state': input has shape (3, 128); the model wants one sample (2, 128) or a batch "
                  "(2, N, 128)")]
        for feeds, message in cases:
            with pytest.raises(Exception) as err:
                model.predict(feeds)
            assert type(err.value).__name__ == "InputValidationError" and message in str(err.value)


def test_adopt_records_the_layout_and_the_guard_uses_it(adopted, silero):
    m = Manifest.find(adopted)
    assert [(t.name, t.batch_axis) for t in m.inputs + m.outputs] == [
        ("input", 0), ("state", 1), ("sr", None), ("output", 0), ("stateN", 1)]  # stateN: seen on 1 and 2 calls
    st = m.calibration.inputs
    assert st["sr"].values == (16000.0,) and st["sr"].ood is None and st["state"].ood is None
    assert st["state"].channels == st["sr"].channels == st["input"].channels == 1 and st["input"].ood is not None

    bare = _bare(silero)
    windows = published.silero_windows(published.speech_like(40, seed=7))
    with EdgeModel.load(adopted, num_threads=1, policy=Policy(on_ood="raise")) as model:
        zero = np.zeros((2, 1, 128), np.float32)
        flagged = []

        def guarded(feeds):
            pred = model.predict(feeds)
            flagged.append(not pred.ok)
            return pred["output"], pred["stateN"]

        for (a, sa), (b, sb) in zip(_stream(guarded, windows[:, None], zero),
                                    _stream(lambda f: bare.run(None, f), windows[:, None], zero)):
            assert np.array_equal(a, b) and np.array_equal(sa, sb)
        assert sum(flagged) == 0  # held-out synthetic speech: nothing flagged, nothing raised
        checks = {c.name: c for c in model.predict({"input": windows[0], "state": zero[:, 0], "sr": 16000}).checks}
        assert checks["sr.values"].ok and checks["state.range"].ok and checks["input.ood"].ok

        # an 8 kHz call (288-sample window) is valid for the model, but not what it was calibrated on
        eight = windows[5][::2][:288]
        with pytest.raises(Exception) as err:
            model.predict({"input": eight, "state": zero[:, 0], "sr": 8000})
        assert type(err.value).__name__ == "OutOfDistributionError" and "(sr): sr.values 100.0%" in str(err.value)
        # a state no stream produces: flagged by its range, a NaN one refused
        with pytest.raises(Exception) as err:
            model.predict({"input": windows[0], "state": np.full((2, 128), 50.0, np.float32), "sr": 16000})
        assert "(state): state.range 100.0%" in str(err.value)
        with pytest.raises(Exception) as err:
            model.predict({"input": windows[0], "state": np.full((2, 128), np.nan, np.float32), "sr": 16000})
        assert str(err.value).startswith("input 'state': input has NaN or Inf")
        health = model.health()["inputs"]
        assert set(health) == {"input", "state", "sr"} and len(health["state"]["channels"]) == 1


def test_the_fallback_gets_the_state_and_the_scalar_as_a_caller_passes_them(adopted):
    """The fallback and the shadow get batches back in the caller's layout (state [2, N, 128], sr once)."""
    windows = published.silero_windows(published.speech_like(8, seed=2))
    zero = np.zeros((2, 2, 128), np.float32)
    with EdgeModel.load(adopted, num_threads=1, fallback=adopted, shadow=1.0,
                        policy=Policy(on_ood="fallback")) as model:
        calm = model.predict({"input": windows[:2], "state": zero, "sr": 16000})
        odd = model.predict({"input": windows[:2], "state": np.full_like(zero, 50.0), "sr": 16000})
        assert calm.sources == ["model", "model"] and odd.sources == ["fallback", "fallback"]
        alone = model.fallback.predict({"input": windows[:2], "state": np.full_like(zero, 50.0), "sr": 16000})
        assert np.array_equal(odd["stateN"], alone["stateN"]) and odd["stateN"].shape == (2, 2, 128)
        shadow = model.health(wait_for_shadow=True)["shadow"]
        assert shadow["compared"] == 4 and shadow["errors"] == 0 and shadow["disagreed"] == 0


def test_edgekit_run_and_profile_on_silero(adopted, capsys):
    call = adopted.parent / "call.npz"
    code = main(["run", str(adopted), str(call), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out)
    assert set(res["outputs"]) == {"output", "stateN"} and np.array(res["outputs"]["stateN"]).shape == (2, 1, 128)
    assert {c["name"] for c in res["checks"]} >= {"sr.values", "state.range", "input.ood"}

    report = adopted.parent / "profile.json"
    code = main(["profile", str(adopted), "--input", str(call), "--runs", "30", "--warmup", "5", "--threads", "1",
                 "--json", str(report)])
    _, err = capsys.readouterr()
    assert code == 0, err
    row = json.loads(report.read_text())["rows"][0]
    assert len(row["samples_ms"]) == 30 and 0 < row["latency_ms"]["p50"] < 1000
