"""Pixel scaling decided from evidence (edgekit/scaling.py): convert, optimize and run never record or
use a --normalize that the calibration data or the manifest contradicts, and never a silent default."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgekit.cli import main
from edgekit.manifest import Manifest
from edgekit.scaling import Evidence, decide, fits, quant_evidence


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def signed_calib(tmp_path_factory, digits):
    """The digits calibration images in [-1, 1]: a model trained on such inputs would be fed them."""
    path = tmp_path_factory.mktemp("signed") / "calib.npy"
    np.save(path, digits.x_calib * 2.0 - 1.0)
    return path


def test_convert_records_the_scaling_the_data_shows_not_the_0_1_default(tmp_path, digits_keras, signed_calib, capsys):
    out = tmp_path / "m.tflite"
    code, _, err = run(capsys, "convert", digits_keras, "-o", out, "--calibration", signed_calib)
    assert code == 0, err
    pre = Manifest.load(out).preprocessing["image"]
    assert (pre.scale, pre.offset) == pytest.approx((2 / 255, -1.0))  # was 1/255 and 0: the silent 0-1 default


def test_convert_refuses_a_declared_scaling_the_data_contradicts(tmp_path, digits_keras, signed_calib, capsys):
    out = tmp_path / "m.tflite"
    code, _, err = run(capsys, "convert", digits_keras, "-o", out, "--calibration", signed_calib, "--normalize", "0-1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--normalize 0-1 scales pixels to [0, 1]" in err and "lies in [-1, 1]" in err
    assert not out.exists()


def test_optimize_takes_normalize_and_refuses_a_contradiction_before_any_trial(tmp_path, digits_keras, digits_npz,
                                                                              capsys):
    out = tmp_path / "o.tflite"
    code, _, err = run(capsys, "optimize", digits_keras, "-o", out, "-c", digits_npz["calib"], "-e",
                       digits_npz["eval"], "--normalize", "-1-1", "--labels", tmp_path / "none.txt")
    assert code == 2 and "--normalize -1-1 scales pixels to [-1, 1]" in err and "lies in [0, 1]" in err
    assert not (tmp_path / "o.tflite.optimize").exists() and not out.exists()


def test_optimize_records_labels_and_scaling_like_convert(tmp_path, digits_keras, digits_npz, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"digit {i}" for i in range(10)) + "\n")
    out = tmp_path / "o.tflite"
    code, _, err = run(capsys, "optimize", digits_keras, "-o", out, "-c", digits_npz["calib"], "-e",
                       digits_npz["eval"], "--candidates", "fp32", "--float-top-k", "0", "--workers", "1",
                       "--runs", "5", "--max-accuracy-drop", "100", "--normalize", "0-1", "--labels", labels)
    assert code == 0, err
    m = Manifest.load(out)
    assert m.labels == tuple(f"digit {i}" for i in range(10))
    assert m.preprocessing["image"].scale == pytest.approx(1 / 255)


def test_run_normalize_that_contradicts_the_manifest_is_an_error(tmp_path, digits_models, digits, capsys):
    model = digits_models("fp32")  # its manifest scales the 8x8 image as 0-1
    img = tmp_path / "seven.png"
    Image.fromarray((digits.x_test[0, ..., 0] * 255).astype(np.uint8)).save(img)
    code, _, err = run(capsys, "run", model, img, "--normalize", "-1-1")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--normalize -1-1 contradicts" in err and "as 0-1" in err
    code, out, err = run(capsys, "run", model, img, "--normalize", "0-1")  # the same as the manifest: fine
    assert code in (0, 1) and "error" not in err, err


@pytest.mark.parametrize("preset, low, high, ok", [
    ("0-1", 0.0, 1.0, True), ("0-1", -1.0, 1.0, False), ("-1-1", 0.0, 1.0, False), ("-1-1", -0.97, 1.0, True),
    ("raw", 0.0, 1.0, False), ("raw", 0.0, 255.0, True), ("imagenet", 0.0, 1.0, False), ("0-1", 0.0, 255.0, False),
])
def test_which_ranges_fit_which_preset(preset, low, high, ok):
    assert fits(preset, Evidence("data", low, high)) is ok


def test_quantized_input_is_evidence():
    for_unit = quant_evidence("x", "int8", 1 / 255, -128)  # int8 quantized for [0, 1]
    assert decide(None, [for_unit]) == "0-1"
    assert decide(None, [quant_evidence("x", "uint8", 1 / 127.5, 127)]) == "-1-1"
    assert quant_evidence("x", "float32", None, None) is None
