"""The audit of models that are not single-input classifiers (issue 18 item 4): a real published detector
(boxes and scores) adopted with real photo crops, and the suite's two-input, two-output digits model, both
audited without a source: per output, its deviation from the clean output under every perturbation."""

from __future__ import annotations

import shutil

import numpy as np

from edgekit.audit.schema import load as load_audit
from edgekit.cli import main
from published_models import photo_crops


def audit(model, ev, tmp_path, capsys):
    code = main(["audit", str(model), "--eval", str(ev), "-o", str(tmp_path / "a.html"),
                 "--json", str(tmp_path / "a.json")])
    err = capsys.readouterr().err
    assert code in (0, 1), err  # 2 would be "bad input": the model refused
    return load_audit(tmp_path / "a.json"), (tmp_path / "a.html").read_text()


def assert_deviation_per_output(points, outputs):
    for q in points:
        assert set(q["outputs"]) == set(outputs)
        for v in q["outputs"].values():
            assert v["relative_error"] >= 0.0 and (v["sqnr_db"] is None or np.isfinite(v["sqnr_db"]))


def test_adopted_face_detector_gets_output_deviation_per_perturbation(tmp_path, published_models, capsys):
    """mediapipe's face detector (128x128x3 in [-1, 1]; outputs regressors and classificators): 40 held-out
    crops, every image perturbation and the Square Attack, each output's relative error and SQNR."""
    model = shutil.copy(published_models["face_detection"], tmp_path / "face.tflite")
    crops = photo_crops(240, 128, seed=0).astype(np.float32) / 127.5 - 1.0
    np.save(tmp_path / "calib.npy", crops[:200])
    np.savez(tmp_path / "crops.npz", x=crops[200:])
    assert main(["adopt", str(model), "--calibration", str(tmp_path / "calib.npy")]) == 0
    doc, html = audit(model, tmp_path / "crops.npz", tmp_path, capsys)

    outputs = ["regressors", "classificators"]
    assert doc["reference"]["kind"] == "clean_outputs" and doc["source"] is None
    assert list(doc["robustness"]["outputs"]) == outputs
    assert all(o["kind"] == "values" and "SQNR" in o["measured"] for o in doc["robustness"]["outputs"].values())
    perts = doc["robustness"]["inputs"]["input"]["perturbations"]
    assert set(perts) == {"gaussian_noise", "scaling", "brightness", "contrast", "blur", "occlusion", "jpeg"}
    for p in perts.values():
        assert_deviation_per_output(p["points"], outputs)
    noise = [q["outputs"]["classificators"]["relative_error"] for q in perts["gaussian_noise"]["points"]]
    assert noise[-1] > noise[0] > 0  # stronger noise moves the scores further
    square = doc["blackbox"]["attacks"]["square"]["input"]
    assert [r["epsilon_share"] for r in square] == [0.02, 0.05, 0.1, 0.2]
    assert_deviation_per_output(square, outputs)
    assert doc["blackbox"]["samples"] == {"input": 20}
    assert "guard.false_positive_rate" in {c["name"] for c in doc["checks"]}  # one input: the guard still runs
    assert doc["guard"]["output_signal"] is None  # boxes and anchor scores are not class scores
    for s in ("adversarial", "classes", "backdoor"):
        assert "skipped" in doc[s]
    assert "input input: blur" in html and "classificators" in html


def test_two_input_model_without_source_perturbs_each_input_by_name(two_io_models, two_io, tmp_path, capsys):
    """image (8x8x1) gets the image corruptions, features (4,) noise and scaling; outputs scores (class
    scores: also top-1 agreement) and value (a regression)."""
    doc, html = audit(two_io_models("int8"), two_io["eval"], tmp_path, capsys)

    by_input = doc["robustness"]["inputs"]
    assert set(by_input) == {"image", "features"}
    assert len(by_input["image"]["perturbations"]) == 7
    assert list(by_input["features"]["perturbations"]) == ["gaussian_noise", "scaling"]
    assert doc["robustness"]["outputs"]["scores"]["kind"] == "class_scores"
    assert doc["robustness"]["outputs"]["value"]["kind"] == "values"
    for name in ("image", "features"):
        for p in by_input[name]["perturbations"].values():
            assert_deviation_per_output(p["points"], ["scores", "value"])
            assert all("top1_agreement" in q["outputs"]["scores"] for q in p["points"])
    assert set(doc["blackbox"]["attacks"]["square"]) == {"image", "features"}
    assert 0.9 < doc["accuracy"]["converted"] <= 1.0  # the eval labels score the class-score output
    assert "skipped" in doc["guard"] and "input features: scaling" in html
