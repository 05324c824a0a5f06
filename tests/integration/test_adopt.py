"""`edgekit adopt`: a manifest for a real published .tflite (mediapipe's face detector, made elsewhere),
with real photo crops; then the guard, run, deploy, the store and profile take it like a converted model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit.adopt import adopt
from edgekit.cli import main
from edgekit.fsutil import sha256_file
from edgekit.manifest import Manifest
from edgekit.runtime import EdgeModel
from edgekit.store import serve
from published_models import VERSION, photo_crops


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def photos():
    """Real photo crops at the face detector's 128x128: 300 for calibration, 100 held out (uint8 pixels)."""
    crops = photo_crops(400, 128, seed=0)
    return {"calib": crops[:300], "held_out": crops[300:]}


def signed_unit(pixels: np.ndarray) -> np.ndarray:
    return (pixels.astype(np.float32) / 127.5 - 1.0).astype(np.float32)  # mediapipe's face detector: [-1, 1]


@pytest.fixture
def detector(tmp_path, published_models):
    """A fresh copy of the published face detector (the cache is never written to by a test)."""
    return shutil.copy(published_models["face_detection"], tmp_path / "face.tflite")


@pytest.fixture
def calib_npy(tmp_path, photos):
    path = tmp_path / "calib.npy"
    np.save(path, signed_unit(photos["calib"]))
    return path


def test_adopt_writes_a_manifest_from_evidence_and_the_runtime_guards_with_it(detector, calib_npy, photos, capsys):
    before = sha256_file(detector)
    code, out, err = run(capsys, "adopt", detector, "--calibration", calib_npy, "--origin", f"mediapipe=={VERSION}")
    assert code == 0, err
    assert "preprocessing" in out and "300 samples" in out
    assert sha256_file(detector) == before  # the published file itself is never changed
    m = Manifest.load(detector)
    assert m.provenance.adopted.sha256 == before == m.model.sha256
    assert m.provenance.adopted.origin == f"mediapipe=={VERSION}" and m.source is None
    assert "tensorflow" not in m.provenance.tools  # adopting needs no TensorFlow
    pre = m.preprocessing["input"]  # the data lie in [-1, 1]: recorded as such, not the 0-1 default
    assert (pre.scale, pre.offset) == pytest.approx((2 / 255, -1.0))
    assert m.calibration.inputs["input"].ood is not None and m.calibration.samples == 300
    assert [o.name for o in m.outputs] == ["regressors", "classificators"]

    with EdgeModel.load(detector) as guarded:
        clean = guarded.predict(signed_unit(photos["held_out"]))
        pixels = guarded.predict(photos["held_out"])  # uint8 frames: the manifest's scaling is applied
        np.testing.assert_allclose(pixels.outputs[1], clean.outputs[1], rtol=1e-3, atol=1e-3)
        far = guarded.predict(np.full((4, 128, 128, 3), 1000.0, np.float32))
    assert not all(c.ok for c in far.checks)  # 1000.0 everywhere is far outside the calibration range


def test_adopt_refuses_scaling_the_evidence_contradicts(tmp_path, detector, calib_npy, capsys):
    code, _, err = run(capsys, "adopt", detector, "--calibration", calib_npy, "--normalize", "0-1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--normalize 0-1 scales pixels to [0, 1]" in err and "lies in [-1, 1]" in err and "-1-1" in err
    assert not (tmp_path / "face.manifest.json").exists()


def test_adopt_asks_for_the_scaling_when_nothing_shows_it(tmp_path, detector, photos, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, crop in enumerate(photos["calib"][:20]):
        Image.fromarray(crop).save(folder / f"{i}.png")
    code, _, err = run(capsys, "adopt", detector, "--calibration", folder)
    assert code == 2 and "pass --normalize" in err and len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "adopt", detector, "--calibration", folder, "--normalize", "-1-1")
    assert code == 0, err
    assert Manifest.load(detector).preprocessing["input"].offset == -1.0


def test_adopt_keeps_an_existing_manifest_without_force(detector, calib_npy, capsys):
    assert run(capsys, "adopt", detector, "-c", calib_npy)[0] == 0
    code, _, err = run(capsys, "adopt", detector, "-c", calib_npy)
    assert code == 2 and "pass --force" in err
    assert run(capsys, "adopt", detector, "-c", calib_npy, "--force", "--json")[0] == 0


def test_bad_input_is_one_line_exit_2(tmp_path, detector, calib_npy, capsys):
    (tmp_path / "junk.tflite").write_bytes(b"not a model at all")
    cases = [(tmp_path / "junk.tflite", "-c", calib_npy), (detector,), (detector, "-c", tmp_path / "none.npy"),
             (detector, "-c", calib_npy, "--task", "dance"), (calib_npy, "-c", calib_npy)]
    for args in cases:
        code, _, err = run(capsys, "adopt", *args)
        assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, (args, err)


def test_adopted_quantized_classifier_records_accuracy_and_its_quantization_is_evidence(
        tmp_path, digits_models, digits, digits_npz, capsys):
    model = shutil.copy(digits_models("int8"), tmp_path / "d.tflite")  # a file without its manifest
    code, _, err = run(capsys, "adopt", model, "-c", digits_npz["calib"], "--normalize", "-1-1")
    assert code == 2 and "quantization" in err  # int8 input quantized for [0, 1], not [-1, 1]
    code, _, err = run(capsys, "adopt", model, "-c", digits_npz["calib"], "--eval", digits_npz["eval"])
    assert code == 0, err
    m = Manifest.load(model)
    assert m.task == "classification" and m.labels == tuple(digits.labels)
    assert m.accuracy.labelled and m.accuracy.output().top1_converted > 0.9
    (pre,) = m.preprocessing.values()  # the int8 input's quantization and the data agree: 0-1
    assert (pre.scale, pre.offset) == pytest.approx((1 / 255, 0.0))


def test_an_adopted_model_runs_deploys_serves_and_profiles(tmp_path, detector, calib_npy, photos, capsys):
    assert run(capsys, "adopt", detector, "-c", calib_npy)[0] == 0
    np.save(tmp_path / "one.npy", photos["held_out"][0])
    code, out, err = run(capsys, "run", detector, tmp_path / "one.npy")
    assert code == 0, out + err
    store = tmp_path / "store"
    code, out, err = run(capsys, "deploy", detector, "--store", store)
    assert code == 0, err
    with serve(store) as served:
        assert served.sha256 == sha256_file(detector)
        assert served.predict(photos["held_out"][:2]).outputs[1].shape == (2, 896, 1)
    code, out, err = run(capsys, "profile", detector, "--runs", 5, "--threads", "1", "--json", tmp_path / "p.json")
    assert code == 0, err
    assert json.loads((tmp_path / "p.json").read_text())["rows"]
