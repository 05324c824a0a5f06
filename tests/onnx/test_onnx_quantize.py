"""ONNX in (issue 16 step 3): `edgekit convert` to .onnx with the fp16, dynamic, int8 and int8-float-io
recipes through onnxruntime.quantization, from a Keras source or a float .onnx, checked and manifested."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from edgekit.cli import main
from edgekit.conversion.pipeline import convert
from edgekit.errors import DataError, RecipeError, SourceModelError, UsageError
from edgekit.recipes import load_recipe
from edgekit.runtime import EdgeModel


def _op_types(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def _agreement(result) -> float:
    return result.manifest.accuracy.outputs[0].agreement


def test_digits_int8_onnx_agrees_with_keras_at_a_third_of_the_float_size(digits_keras, digits_onnx, digits,
                                                                          tmp_path):
    """The acceptance: >= 99% top-1 agreement with Keras on the 450 held-out digits, <= 0.35x the float .onnx."""
    out = tmp_path / "digits-int8.onnx"
    r = convert(digits_keras, out, recipe="int8", calibration=digits.x_calib,
                eval_data=(digits.x_test, digits.y_test), quiet=True)
    assert r.manifest.accuracy.samples == 450
    assert _agreement(r) >= 0.99
    assert out.stat().st_size <= 0.35 * digits_onnx.stat().st_size
    assert {"QuantizeLinear", "DequantizeLinear"} <= _op_types(out)  # QDQ format
    model = onnx.load(str(out))
    assert not model.graph.value_info and not model.doc_string  # slimmed
    # the file runs guarded like any other, on its own manifest (calibration statistics included)
    guarded = EdgeModel.load(out).predict(digits.x_test)
    assert np.mean(guarded.output.argmax(1) == digits.y_test) >= 0.95 and guarded.flagged.mean() <= 0.02


@pytest.mark.parametrize("recipe, op, ratio", [("dynamic", "DynamicQuantizeLinear", 0.35),
                                               ("fp16", "Cast", 0.55), ("int8-float-io", "QuantizeLinear", 0.35)])
def test_onnx_source_to_each_recipe_checked_against_the_float_onnx(digits_onnx, digits, tmp_path, recipe, op,
                                                                   ratio):
    out = tmp_path / f"d-{recipe}.onnx"
    r = convert(digits_onnx, out, recipe=recipe, calibration=digits.x_calib,
                eval_data=(digits.x_test, digits.y_test), quiet=True)
    assert op in _op_types(out)
    assert _agreement(r) >= 0.99
    assert out.stat().st_size <= ratio * digits_onnx.stat().st_size
    saved = json.loads(r.manifest_path.read_text())
    assert saved["recipe"]["name"] == recipe and saved["source"]["format"] == "onnx"
    assert saved["model"]["file"] == out.name


def test_per_tensor_recipe_file_gives_one_scale_per_weight(digits_onnx, digits, tmp_path):
    per_tensor = tmp_path / "int8-per-tensor.toml"
    per_tensor.write_text('requires_calibration = true\n\n[onnx]\nquantization = "static"\nper_channel = false\n')
    outs = {}
    for name, rec in (("channel", "int8"), ("tensor", per_tensor)):
        outs[name] = tmp_path / f"d-{name}.onnx"
        convert(digits_onnx, outs[name], recipe=rec, calibration=digits.x_calib, quiet=True)

    def weight_scale_sizes(path):
        model = onnx.load(str(path))
        inits = {i.name: i for i in model.graph.initializer}
        return {int(np.prod(inits[n.input[1]].dims)) for n in model.graph.node
                if n.op_type == "DequantizeLinear" and n.input[0] in inits and n.input[1] in inits}

    assert weight_scale_sizes(outs["tensor"]) == {1}
    assert max(weight_scale_sizes(outs["channel"])) > 1


def test_int8_without_calibration_and_onnx_to_tflite_are_refused_before_any_work(digits_onnx, digits, tmp_path):
    with pytest.raises(DataError, match="recipe 'int8' quantizes activations and needs --calibration"):
        convert(digits_onnx, tmp_path / "d.onnx", recipe="int8", quiet=True)
    with pytest.raises(UsageError, match="an ONNX source converts to .onnx only"):
        convert(digits_onnx, tmp_path / "d.tflite", recipe="int8", calibration=digits.x_calib, quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_bad_onnx_section_is_one_line_recipe_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[onnx]\nquantization = "int4"\n')
    with pytest.raises(RecipeError, match=r"bad.toml \[onnx\]: quantization has 'int4'; allowed: dynamic, fp16"):
        load_recipe(bad)
    bad.write_text('[onnx]\ncalibration_method = "Entropy"\nper_chanel = false\n')
    with pytest.raises(RecipeError, match="unknown key 'per_chanel'"):
        load_recipe(bad)
    assert load_recipe("int8").onnx.quantization == "static" and load_recipe("int16x8").onnx is None


def test_cli_converts_onnx_to_int8_onnx(digits_onnx, digits_npz, tmp_path, capsys):
    out = tmp_path / "m-int8.onnx"
    args = ["convert", str(digits_onnx), "-o", str(out), "--recipe", "int8", "--calibration",
            str(digits_npz["calib"]), "--eval", str(digits_npz["eval"]), "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"]["outputs"][0]["agreement"] >= 0.99
    assert main(args) == 2  # the output exists now: refused in one line
    assert "already exists" in capsys.readouterr().err


def test_garbage_or_cut_onnx_source_is_one_line_source_error(digits_onnx, tmp_path):
    text, cut = tmp_path / "notes.onnx", tmp_path / "cut.onnx"
    text.write_text("not a model\n")
    cut.write_bytes(digits_onnx.read_bytes()[:20000])
    with pytest.raises(SourceModelError, match="notes.onnx: not an ONNX model"):
        convert(text, tmp_path / "a.onnx", recipe="dynamic", quiet=True)
    with pytest.raises(SourceModelError, match="cut.onnx: .*onnxruntime cannot load this model"):
        convert(cut, tmp_path / "b.onnx", recipe="dynamic", quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.onnx", "notes.onnx"]


def test_a_pruned_keras_model_exports_to_onnx_with_its_zeros_and_an_onnx_source_is_refused(digits_keras, digits,
                                                                                           tmp_path):
    """--prune with .onnx output: the Keras source is pruned (and fine-tuned) before the export, so the .onnx
    carries the zeros, int8 keeps them (symmetric weights: 0 -> 0) and compresses smaller; the manifest says so."""
    from onnx import numpy_helper

    kw = dict(recipe="int8", calibration=digits.x_calib, eval_data=(digits.x_test, digits.y_test), quiet=True)
    plain = convert(digits_keras, tmp_path / "plain.onnx", **kw)
    pruned = convert(digits_keras, tmp_path / "pruned.onnx", prune=0.6, train_data=(digits.x_train, digits.y_train),
                     fine_tune_epochs=1, **kw)
    p = pruned.manifest.pruning
    assert p is not None and p.fine_tuned and abs(p.sparsity_achieved - 0.6) < 0.02
    g = onnx.load(str(tmp_path / "pruned.onnx")).graph
    weights = [numpy_helper.to_array(i) for i in g.initializer if i.data_type == onnx.TensorProto.INT8]
    big = [w for w in weights if w.size >= 1000]  # the conv and dense kernels as int8 codes
    assert big and all((w == 0).mean() >= 0.55 for w in big)
    assert pruned.manifest.sizes.tflite_zlib_bytes < 0.85 * plain.manifest.sizes.tflite_zlib_bytes
    assert _agreement(pruned) >= 0.95

    code = main(["convert", str(tmp_path / "plain.onnx"), "-o", str(tmp_path / "again.onnx"), "--prune", "0.5"])
    assert code == 2 and not (tmp_path / "again.onnx").exists()
