"""The suite's digits CNN on both engines: Keras -> .onnx by edgekit, run through the ONNX Runtime session
and EdgeModel, against Keras and the .tflite fp32 of the same source (issue 16 steps 2 and 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.engine import open_model
from edgekit.errors import ModelLoadError, UsageError
from edgekit.runtime import EdgeModel


def test_keras_to_onnx_matches_keras(digits_onnx, digits_keras, digits):
    import keras

    session = open_model(digits_onnx, threads=1)
    assert session.engine.startswith("onnxruntime ")
    assert [(t.name, t.shape, t.dtype, t.scale) for t in session.inputs] == [("image", (-1, 8, 8, 1), "float32", None)]
    ours = session.run([digits.x_test.astype(np.float32)])[0]
    ref = keras.saving.load_model(digits_keras).predict(digits.x_test, verbose=0)
    assert np.abs(ours - ref).max() < 1e-5
    ops = session.ops()
    assert ops[-1].name == "Softmax" and ops[-1].outputs == (session.outputs[0].index,)


def test_manifest_names_the_onnx_file_and_the_check(digits_onnx):
    man = json.loads(digits_onnx.with_name("digits.onnx.manifest.json").read_text())
    assert man["schema"] == "edgekit.manifest/2" and man["model"]["file"] == "digits.onnx"
    assert man["model"]["size_bytes"] == digits_onnx.stat().st_size
    assert man["accuracy"]["outputs"][0]["agreement"] == 1.0
    assert man["calibration"]["inputs"]["image"]


def test_edgemodel_same_top1_as_tflite_fp32_and_flags_noise(digits_onnx, digits_models, digits, noise):
    onnx_model = EdgeModel.load(digits_onnx)
    tfl_model = EdgeModel.load(digits_models("fp32"))
    ours = onnx_model.predict(digits.x_test)
    assert len(digits.x_test) == 450
    assert np.array_equal(ours.output.argmax(1), tfl_model.predict(digits.x_test).output.argmax(1))
    assert ours.flagged.mean() <= 0.02
    assert onnx_model.health()["model"]["backend"].startswith("onnxruntime")
    assert onnx_model.runner.probability == [True]  # found the ONNX Softmax: the sums-to-1 check applies
    assert "sums_to_1" in {c.name for c in ours.checks}
    noisy = onnx_model.predict(noise[:20])
    assert noisy.flagged.all() and (noisy.ood_score > 1.0).all()
    assert noisy.incidents[0]["kind"] == "ood"


def test_fallback_of_either_format(digits_onnx, digits_models, digits, tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(digits_onnx.read_bytes()[:5000])  # cut short: ONNX Runtime refuses it
    from edgekit.runtime import Policy

    model = EdgeModel.load(broken, fallback=digits_models("fp32"), policy=Policy(on_load="fallback"))
    assert model.load_error and "broken.onnx" in model.load_error
    assert model.predict(digits.x_test[:5]).sources == ["fallback"] * 5
    model = EdgeModel.load(digits_models("fp32"), fallback=digits_onnx)
    assert model.fallback.health()["model"]["backend"].startswith("onnxruntime")


def test_cut_or_garbage_onnx_is_one_line_model_load_error(digits_onnx):
    data = digits_onnx.read_bytes()
    for bad in (data[:5000], data[:64], b"\x08\x07\x12" + b"\xff" * 100):
        with pytest.raises(ModelLoadError) as err:
            open_model(bad, label="bad.onnx")
        assert "\n" not in str(err.value) and str(err.value).startswith("bad.onnx: ")


def test_onnx_session_by_name_and_in_three_steps(digits_onnx, digits):
    session = open_model(digits_onnx)
    x = digits.x_test[:4].astype(np.float32)
    by_list = session.run([x])[0]
    session.set_inputs({"image": x})
    session.invoke()
    assert np.array_equal(session.get_outputs()[0], by_list)
    with pytest.raises(UsageError, match="no input named 'img'"):
        session.run({"img": x})


def test_onnx_output_refuses_what_it_does_not_take_yet_before_any_work(digits_keras, digits, tmp_path):
    from edgekit.conversion.pipeline import convert

    out = tmp_path / "d.onnx"
    with pytest.raises(UsageError, match="recipe 'int16x8' has no ONNX form"):
        convert(digits_keras, out, recipe="int16x8", calibration=digits.x_calib, quiet=True)
    with pytest.raises(UsageError, match="ONNX output does not take --select-tf-ops yet"):
        convert(digits_keras, out, recipe="fp32", select_tf_ops=True, quiet=True)
    assert list(tmp_path.iterdir()) == []
