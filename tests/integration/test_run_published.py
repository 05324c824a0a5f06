"""Issue 17 item 4: ``edgekit run`` on a real published model (mediapipe's face detector, no manifest):
every output by name and shape with a short summary, the .npz (array ``x``) that convert, audit and
profile take, and no interpreter log line on every run."""

from __future__ import annotations

import shutil

import numpy as np

from edgekit.cli import main
from published_models import photo_crops


def test_run_summarises_every_output_of_a_detector_and_takes_an_npz_x(tmp_path, published_models, capfd):
    model = shutil.copy(published_models["face_detection"], tmp_path / "face.tflite")
    np.savez(tmp_path / "crops.npz", x=photo_crops(2, 128, seed=1).astype(np.float32) / 127.5 - 1.0)
    code = main(["run", str(model), str(tmp_path / "crops.npz")])
    out, err = capfd.readouterr()  # fd level: the interpreter's C++ log goes to fd 2, not sys.stderr
    assert code == 0, out + err
    assert "XNNPACK" not in err and "XNNPACK" not in out
    for i in (0, 1):
        block = out.split(f"crops.npz[{i}]:")[1]
        assert "regressors [896, 16]" in block and "classificators [896, 1]" in block
    line = next(s for s in out.splitlines() if "classificators [896, 1]" in s)
    assert "range" in line and "top" in line and len(line) < 160  # a summary, not 896 numbers


def test_run_on_a_classifier_shows_labels_and_the_output_by_name(digits_models, digits, tmp_path, capfd):
    np.savez(tmp_path / "d.npz", x=digits.x_test[:1], y=digits.y_test[:1])
    code = main(["run", str(digits_models("int8")), str(tmp_path / "d.npz"), "-k", "2"])
    out, err = capfd.readouterr()
    assert code == 0, out + err
    assert out.splitlines()[0].startswith(f"{tmp_path / 'd.npz'}[0]: {digits.labels[digits.y_test[0]]} (")
    assert "XNNPACK" not in err
