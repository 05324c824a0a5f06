"""Issue 17 item 3: the guard of an adopted published model catches the classic preprocessing mistakes.

mediapipe's face detector (float input in [-1, 1]) and selfie segmenter (float input in [0, 1]),
adopted with real photo crops; 100 held-out crops per case. Measured rates (seed 0): clean 1%;
1000.0, 0..255 and pixels scaled for the other range 99-100%; a transposed (NCHW) image read as NHWC
94% (face detector) and 100% (segmenter). BGR for RGB stands out in no single photo (1-2% of swapped
crops, with any per-sample colour feature we tried: a scene is as plausible with red and blue swapped),
so it is caught where it can be: the stream's drift per channel, which names the likely cause.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgekit.adopt import adopt
from edgekit.runtime import EdgeModel
from published_models import photo_crops

CASES = {  # model -> (input side, scaling it was trained with, the other common scaling)
    "face_detection": (128, lambda p: p / 127.5 - 1.0, lambda p: p / 255.0),
    "selfie_segmentation": (256, lambda p: p / 255.0, lambda p: p / 127.5 - 1.0),
}


def _flag_rate(guarded: EdgeModel, x: np.ndarray) -> float:
    pred = guarded.predict(np.ascontiguousarray(x, dtype=np.float32))
    return 0.0 if pred.flagged is None else float(np.mean(pred.flagged))


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_adopted_guard_flags_wrong_scaling_at_few_false_positives(name, tmp_path, published_models):
    side, scale, other = CASES[name]
    crops = photo_crops(400, side, seed=0).astype(np.float32)
    calib, held = crops[:300], crops[300:]
    model = shutil.copy(published_models[name], tmp_path / f"{name}.tflite")
    np.save(tmp_path / "calib.npy", scale(calib).astype(np.float32))
    adopt(model, calibration=tmp_path / "calib.npy")
    with EdgeModel.load(model) as guarded:
        assert _flag_rate(guarded, scale(held)) <= 0.05  # clean held-out crops
        assert _flag_rate(guarded, np.full_like(held, 1000.0)) >= 0.95
        assert _flag_rate(guarded, held) >= 0.95  # 0..255 pixels, not scaled at all
        # 0..1 pixels into the [-1, 1] model, and [-1, 1] pixels into the [0, 1] one
        assert _flag_rate(guarded, other(held)) >= 0.95
        nchw = np.ascontiguousarray(scale(held).transpose(0, 3, 1, 2)).reshape(held.shape)  # a CHW buffer as HWC
        assert _flag_rate(guarded, nchw) >= 0.9


def test_without_a_manifest_the_guard_says_what_it_did_not_check(tmp_path, published_models, capsys):
    """A float input and no manifest: no range and no OOD reference exist, so nothing may read "ok 0.0%"."""
    from edgekit.cli import main

    model = shutil.copy(published_models["face_detection"], tmp_path / "face.tflite")
    with EdgeModel.load(model) as guarded:
        pred = guarded.predict(np.full((1, 128, 128, 3), 1000.0, np.float32))
        checks = {c.name: c for c in pred.checks}
        health = guarded.health()
    assert checks["range"].value == checks["ood"].value == "not checked"
    assert "not checked" in str(checks["range"]) and " ok" not in str(checks["range"])
    assert health["ood_score"] == "not checked"
    np.save(tmp_path / "one.npy", np.zeros((128, 128, 3), np.float32))
    code = main(["run", str(model), str(tmp_path / "one.npy")])
    out = capsys.readouterr().out
    assert code == 0 and "0.0%" not in out
    assert any(line.split()[:3] == ["range", "not", "checked"] for line in out.splitlines())


def test_a_bgr_stream_drifts_and_health_names_the_swap(tmp_path, published_models):
    """400 calls of crops (shuffled: the monitor keeps every 8th large input, and a stream alternating two
    photos would alias with it): clean is not "drifted"; red and blue swapped is, with its likely cause."""
    crops = photo_crops(700, 128, seed=0).astype(np.float32) / 127.5 - 1.0
    calib, held = crops[:300], crops[300:][np.random.default_rng(5).permutation(400)]
    model = shutil.copy(published_models["face_detection"], tmp_path / "face.tflite")
    np.save(tmp_path / "calib.npy", calib)
    adopt(model, calibration=tmp_path / "calib.npy")
    seen = {}
    for name, stream in (("clean", held), ("bgr", np.ascontiguousarray(held[..., ::-1]))):
        with EdgeModel.load(model) as guarded:
            for i in range(len(stream)):
                guarded.predict(stream[i:i + 1])
            seen[name] = guarded.health()["inputs"][guarded.input_names[0]]
    assert seen["clean"]["drift"] != "drifted" and "likely_cause" not in seen["clean"]
    assert seen["bgr"]["drift"] == "drifted" and "BGR" in seen["bgr"]["likely_cause"]
