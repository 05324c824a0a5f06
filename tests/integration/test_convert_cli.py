"""`edgekit convert` on the command line: the table, and one clear line with exit 2 for every bad input."""

import json
import zipfile

import numpy as np
import pytest

from edgekit.cli import main


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_convert_prints_table(tmp_path, capsys, digits_keras, digits_npz):
    out_path = tmp_path / "m.tflite"
    code, out, err = run(capsys, "convert", digits_keras, "-o", out_path, "--recipe", "int8",
                         "--calibration", digits_npz["calib"], "--eval", digits_npz["eval"])
    assert code == 0, err
    assert "recipe" in out and "top-1" in out and "agreement" in out and "ratio" in out
    assert "Saved artifact" not in out + err  # the converter's own chatter stays out
    assert out_path.exists() and (tmp_path / "m.manifest.json").exists()
    # refuses to overwrite without --force, and the file is untouched
    before = out_path.read_bytes()
    code, _, err = run(capsys, "convert", digits_keras, "-o", out_path, "--recipe", "dynamic")
    assert code == 2 and "already exists; pass --force" in err and out_path.read_bytes() == before
    code, _, err = run(capsys, "convert", digits_keras, "-o", out_path, "--recipe", "dynamic", "--force")
    assert code == 0 and out_path.read_bytes() != before


def _one_line_error(code, err, needle):
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]
    assert "Traceback" not in err


def test_bad_sources(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.keras").write_text("not a zip")
    (tmp_path / "fake.h5").write_bytes(b"\x00" * 64)
    with zipfile.ZipFile(tmp_path / "empty.keras", "w") as z:
        z.writestr("config.json", "{broken")
    (tmp_path / "dir").mkdir()
    cases = [
        (tmp_path / "missing.keras", "no such file"),
        (tmp_path / "notes.txt", "not a model"),
        (tmp_path / "fake.keras", "not a valid .keras file"),
        (tmp_path / "fake.h5", "not a valid HDF5 file"),
        (tmp_path / "empty.keras", "cannot load keras model"),
        (tmp_path / "dir", "without saved_model.pb"),
    ]
    for src, needle in cases:
        code, _, err = run(capsys, "convert", src, "-o", tmp_path / "o.tflite")
        _one_line_error(code, err, needle)


def test_truncated_keras_file(tmp_path, capsys, digits_keras):
    data = digits_keras.read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    code, _, err = run(capsys, "convert", tmp_path / "cut.keras", "-o", tmp_path / "o.tflite")
    _one_line_error(code, err, "cut.keras")


def test_bad_data_and_options(tmp_path, capsys, digits_keras, digits):
    np.save(tmp_path / "nan.npy", np.full((120, 8, 8, 1), np.nan, np.float32))
    np.save(tmp_path / "shape.npy", np.zeros((120, 28, 28, 1), np.float32))
    np.save(tmp_path / "few.npy", digits.x_calib[:20])
    out = tmp_path / "o.tflite"
    cases = [
        (["--recipe", "int8"], "needs --calibration data"),
        (["--recipe", "int8", "--calibration", tmp_path / "nan.npy"], "contains NaN or Inf in 120 sample"),
        (["--recipe", "int8", "--calibration", tmp_path / "shape.npy"], "the model input wants (8, 8, 1)"),
        (["--recipe", "int9"], "unknown converter 'int9'"),
        (["--target", "raspberry-pi-9"], "unknown profile"),
        (["--prune", "1.5"], "between 0 and 1"),
        (["--compat", "tflite-runtime-1.0", "--recipe", "dynamic"], "unknown --compat"),
    ]
    for extra, needle in cases:
        code, _, err = run(capsys, "convert", digits_keras, "-o", out, *extra)
        _one_line_error(code, err, needle)
    assert not out.exists()
    code, _, err = run(capsys, "convert", digits_keras, "-o", digits_keras.with_suffix(".tflite").parent / "x.keras")
    _one_line_error(code, err, "must end in .tflite")


def test_few_calibration_samples_warn(tmp_path, capsys, digits_keras, digits):
    np.save(tmp_path / "few.npy", digits.x_calib[:20])
    code, out, err = run(capsys, "convert", digits_keras, "-o", tmp_path / "o.tflite", "--recipe", "int8",
                         "--calibration", tmp_path / "few.npy")
    assert code == 0 and "only 20 calibration samples" in out


def test_source_never_overwritten(tmp_path, capsys, digits_keras):
    src = tmp_path / "m.tflite"
    src.write_bytes(b"x")
    # the same path as SOURCE and OUTPUT: refused even with --force, and left alone
    code, _, err = run(capsys, "convert", src, "-o", src, "--force")
    _one_line_error(code, err, "would overwrite the source model")
    assert src.read_bytes() == b"x"
    # OUTPUT's manifest sidecar may not land on the source either
    side = tmp_path / "m.manifest.json"
    side.write_bytes(b"{}")
    code, _, err = run(capsys, "convert", side, "-o", tmp_path / "m.tflite", "--force")
    _one_line_error(code, err, "would overwrite the source model")
    assert side.read_bytes() == b"{}"


def test_image_folder_calibration(tmp_path, capsys, digits_keras, digits):
    from PIL import Image

    folder = tmp_path / "imgs"
    for label in range(10):
        (folder / str(label)).mkdir(parents=True)
    for i, (x, y) in enumerate(zip(digits.x_test[:150], digits.y_test[:150])):
        Image.fromarray((x[..., 0] * 255).astype(np.uint8)).save(folder / str(y) / f"{i}.png")
    code, out, err = run(capsys, "convert", digits_keras, "-o", tmp_path / "o.tflite", "--recipe", "int8",
                         "--calibration", folder, "--eval", folder)
    assert code == 0, err
    from edgekit.manifest import Manifest

    m = Manifest.load(tmp_path / "o.tflite")
    assert m.labels == tuple(str(i) for i in range(10)) and m.accuracy.output().top1_source > 0.9


def test_batch_size_gives_static_shapes_the_edge_tpu_accepts(tmp_path, capsys, digits_keras, digits_npz):
    """Issue 19 item 5: convert --batch-size 1 fixes the batch; check no longer refuses dynamic shapes."""
    from edgekit.engine.tflite_info import load_model_info
    from edgekit.targets import check_model

    out = tmp_path / "static.tflite"
    assert main(["convert", str(digits_keras), "-o", str(out), "--recipe", "int8", "-c", str(digits_npz["calib"]),
                 "-e", str(digits_npz["eval"]), "--batch-size", "1"]) == 0
    info = load_model_info(out)
    assert [list(t.shape_signature) for t in info.inputs] == [[1, 8, 8, 1]] and not info.dynamic_tensors
    assert "dynamic-shape" not in {f.code for f in check_model(out, "coral-edge-tpu").findings}
    assert json.loads((tmp_path / "static.manifest.json").read_text())["inputs"][0]["shape"][0] == 1
    capsys.readouterr()
    assert main(["convert", str(digits_keras), "-o", str(tmp_path / "x.tflite"), "--batch-size", "0"]) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err


def test_batch_size_on_a_two_input_model(tmp_path, two_io):
    """The several-I/O path (named dict export) takes a fixed batch too, keeping the input names."""
    if two_io.get("keras") is None:
        pytest.skip("prebuilt test models: no Keras source")
    from edgekit.engine.tflite_info import load_model_info

    out = tmp_path / "two.tflite"
    assert main(["convert", str(two_io["keras"]), "-o", str(out), "--batch-size", "2"]) == 0
    ins = load_model_info(out).inputs
    assert len(ins) == 2 and all(t.shape_signature[0] == 2 for t in ins)
    names = {t["name"] for t in json.loads((tmp_path / "two.manifest.json").read_text())["inputs"]}
    assert names == {"image", "features"}
