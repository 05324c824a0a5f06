"""Several inputs and outputs through edgekit.convert: data by input name, statistics per input,
accuracy per output, everything matched by name (TFLite sorts signature inputs alphabetically and
may order output tensors differently from the Keras model)."""

import numpy as np
import pytest

import edgekit
from edgekit.errors import DataError
from edgekit.manifest import Manifest


@pytest.mark.parametrize("recipe", ["dynamic", "int8"])
def test_two_inputs_two_outputs_convert_with_everything_per_name(two_io_models, two_io, digits, recipe):
    m = Manifest.load(two_io_models(recipe))
    assert {t.name for t in m.inputs} == {"image", "features"}
    assert {t.name for t in m.outputs} == {"scores", "value"}
    assert set(m.calibration.inputs) == {"image", "features"}
    assert m.calibration.inputs["image"].channels == 1 and m.calibration.inputs["features"].channels == 4
    assert list(m.preprocessing) == ["image"]  # the image input only
    acc = {o.name: o for o in m.accuracy.outputs}
    assert set(acc) == {"scores", "value"}
    assert acc["scores"].task == "classification" and acc["scores"].top1_source > 0.85
    assert acc["scores"].agreement >= 0.97 and abs(acc["scores"].top1_delta_points) <= 2.0
    assert acc["value"].task == "regression" and acc["value"].sqnr_db > 20
    if recipe == "int8":
        assert all(t.dtype == "int8" for t in m.inputs + m.outputs)


def test_the_converted_file_answers_like_keras_by_name(two_io_models, two_io, digits):
    """Inputs fed by name into the bare interpreter: the same top-1 as Keras (a swapped input would not)."""
    import keras

    from edgekit.conversion.evaluate import run_tflite_named
    from prebuilt_models import quadrant_means

    x = {"image": digits.x_test, "features": quadrant_means(digits.x_test)}
    ref = keras.models.load_model(two_io["keras"]).predict(x, verbose=0)
    out = run_tflite_named(two_io_models("int8").read_bytes(), x)
    assert np.mean(out["scores"].argmax(1) == ref[0].argmax(1)) >= 0.97
    assert np.abs(out["value"] - ref[1]).max() < 0.2


def test_data_that_does_not_name_the_inputs_is_refused(two_io, tmp_path, digits):
    bad = tmp_path / "bad.npz"
    np.savez(bad, image=digits.x_calib, extra=digits.x_calib)
    with pytest.raises(DataError, match=r"missing \['features'\].*unknown \['extra'\]"):
        edgekit.convert(two_io["keras"], tmp_path / "o.tflite", recipe="int8", calibration=bad, quiet=True)
    uneven = tmp_path / "uneven.npz"
    np.savez(uneven, image=digits.x_calib, features=np.zeros((5, 4), np.float32))
    with pytest.raises(DataError, match="different sample counts"):
        edgekit.convert(two_io["keras"], tmp_path / "o.tflite", recipe="int8", calibration=uneven, quiet=True)
    assert not (tmp_path / "o.tflite").exists()


def test_cli_takes_one_file_per_input_by_name(two_io, tmp_path, digits):
    import json

    from edgekit.cli import main
    from prebuilt_models import quadrant_means

    np.save(tmp_path / "img.npy", digits.x_calib)
    np.save(tmp_path / "feat.npy", quadrant_means(digits.x_calib))
    out = tmp_path / "cli.tflite"
    code = main(["convert", str(two_io["keras"]), "-o", str(out), "--recipe", "dynamic",
                 "--calibration", f"image={tmp_path / 'img.npy'}", "--calibration", f"features={tmp_path / 'feat.npy'}",
                 "--eval", str(two_io["eval"]), "--json"])
    assert code == 0
    m = Manifest.load(out)
    assert set(m.calibration.inputs) == {"image", "features"} and len(m.accuracy.outputs) == 2
    assert main(["convert", str(two_io["keras"]), "-o", str(tmp_path / "x.tflite"),
                 "--calibration", "image", "--calibration", "features=f.npy"]) == 2
