"""convert --debug names the planted layer first; keeping it in float recovers int8's accuracy."""

from __future__ import annotations

import json

import pytest

from optimize_helpers import PLANTED, cli


def debug_planted(tmp_path, planted, out_name: str, recipe: str) -> tuple[str, dict]:
    """convert the planted model with --debug: (stdout, the report); plain int8 must lose over 2 points."""
    from edgekit.manifest import manifest_path_for

    report = tmp_path / f"{out_name}.json"
    code, out, err = cli("convert", planted["source"], "-o", tmp_path / out_name, "--recipe", recipe,
                         "-c", planted["calib"], "-e", planted["eval"], "--debug", "--debug-report", report)
    assert code == 0, err
    m = json.loads(manifest_path_for(tmp_path / out_name).read_text())
    assert m["accuracy"]["outputs"][0]["top1_delta_points"] < -2.0  # plain int8 really loses more than 2 points
    return out, json.loads(report.read_text())


@pytest.mark.slow
def test_int8_loses_points_and_debug_ranks_the_planted_layer_first(tmp_path, planted):
    out, doc = debug_planted(tmp_path, planted, "int8.tflite", "int8-float-io")
    assert doc["metric"] == "rmse/scale"
    layers = doc["layers"]
    assert layers[0]["layer"] == PLANTED
    assert layers[0]["rmse_per_scale"] > 5 * layers[1]["rmse_per_scale"]
    assert {e["layer"] for e in layers} >= {"conv1", "conv2", "hidden", "probs"}  # tensor names mapped to Keras
    assert "layers ranked by the error int8 quantization adds" in out
    assert out.index(PLANTED) < out.index("probs", out.index("layers ranked"))


@pytest.mark.slow
def test_denylisting_the_planted_layer_recovers_accuracy(tmp_path, planted):
    code, _, err = cli("convert", planted["source"], "-o", tmp_path / "mixed.tflite", "--recipe", "int8-float-io",
                       "-c", planted["calib"], "-e", planted["eval"], "--denylist", PLANTED, "--json")
    assert code == 0, err
    m = json.loads((tmp_path / "mixed.manifest.json").read_text())
    assert m["accuracy"]["outputs"][0]["top1_delta_points"] > -1.0
    assert m["recipe"]["float_layers"] == [PLANTED]
    fp32_bytes = m["sizes"]["float32_weights_bytes"]
    assert m["model"]["size_bytes"] < 0.5 * fp32_bytes


def test_debug_needs_calibration_and_denylist_needs_known_layers(tmp_path, digits_keras, digits_npz):
    code, _, err = cli("convert", digits_keras, "-o", tmp_path / "a.tflite", "--recipe", "fp32", "--debug")
    assert code == 2 and "needs --calibration" in err and "Traceback" not in err
    code, _, err = cli("convert", digits_keras, "-o", tmp_path / "b.tflite", "--recipe", "int8-float-io",
                       "-c", digits_npz["calib"], "--denylist", "no_such_layer")
    assert code == 2 and "no_such_layer" in err and "--debug" in err
    code, _, err = cli("convert", digits_keras, "-o", tmp_path / "c.tflite", "--recipe", "dynamic",
                       "-c", digits_npz["calib"], "--denylist", "dense")
    assert code == 2 and "needs an int8 recipe" in err


def _float_weight_nodes(path) -> set[str]:
    """Names of the Gemm/Conv/MatMul nodes whose weight is a float initializer (not dequantized int8)."""
    import onnx

    g = onnx.load(str(path)).graph
    inits = {i.name for i in g.initializer}
    return {n.name for n in g.node if n.op_type in ("Gemm", "Conv", "MatMul") and n.input[1] in inits}


def test_onnx_debug_ranks_the_planted_layer_first_and_denylist_keeps_its_nodes_in_float(tmp_path, planted):
    out, doc = debug_planted(tmp_path, planted, "int8.onnx", "int8")  # ONNX Runtime's int8 loses too
    assert doc["metric"] == "noise added dB" and doc["key"] == "noise_added_db"
    nodes = doc["layers"]
    assert nodes[0]["name"] == PLANTED and nodes[0]["layer"] == PLANTED  # tf2onnx node names mapped to Keras
    healthy = [e["noise_added_db"] for e in nodes if e["layer"] in ("conv1", "conv2", "hidden")]
    assert healthy and nodes[0]["noise_added_db"] > max(healthy) + 20  # 100x more noise than a healthy layer
    assert "nodes ranked by the error int8 quantization adds" in out
    assert not _float_weight_nodes(tmp_path / "int8.onnx")  # plain int8: every weight dequantized

    code, _, err = cli("convert", planted["source"], "-o", tmp_path / "mixed.onnx", "--recipe", "int8",
                       "-c", planted["calib"], "-e", planted["eval"], "--denylist", PLANTED, "--json")
    assert code == 0, err
    kept = _float_weight_nodes(tmp_path / "mixed.onnx")
    assert kept and all(f"/{PLANTED}_" in n for n in kept)  # only the planted layer's Gemm stays float
    m = json.loads((tmp_path / "mixed.onnx.manifest.json").read_text())
    assert m["recipe"]["float_layers"] == [PLANTED]
    # its input comes without int8 rounding too (onnx._float_inputs): the accuracy comes back, as on TFLite;
    # with nodes_to_exclude alone the planted unit rounded to zero on the way in and top-1 fell 10 points
    assert m["accuracy"]["outputs"][0]["top1_delta_points"] > -1.0


def test_onnx_denylist_names_are_checked_and_need_a_static_recipe(tmp_path, digits_keras, digits_npz):
    code, _, err = cli("convert", digits_keras, "-o", tmp_path / "b.onnx", "--recipe", "int8",
                       "-c", digits_npz["calib"], "--denylist", "no_such_node")
    assert code == 2 and "no_such_node" in err and "--debug" in err and "Traceback" not in err
    code, _, err = cli("convert", digits_keras, "-o", tmp_path / "c.onnx", "--recipe", "dynamic",
                       "-c", digits_npz["calib"], "--denylist", "dense")
    assert code == 2 and "needs an int8 recipe" in err
    assert not (tmp_path / "b.onnx").exists() and not (tmp_path / "c.onnx").exists()


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    """A Keras model with an image input and a feature input (two branches joined), exported to ONNX by
    edgekit, with calibration and evaluation sets that name both inputs."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    d = tmp_path_factory.mktemp("two_inputs")
    image, meta = keras.Input((8, 8, 1), name="image"), keras.Input((4,), name="meta")
    x = keras.layers.Flatten()(keras.layers.Conv2D(8, 3, activation="relu", name="conv")(image))
    y = keras.layers.Dense(8, activation="relu", name="meta_dense")(meta)
    out = keras.layers.Dense(3, activation="softmax", name="probs")(keras.layers.Concatenate()([x, y]))
    model = keras.Model([image, meta], out)
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(0, 1, (320, 8, 8, 1)).astype("float32"), rng.normal(size=(320, 4)).astype("float32")
    labels = (x1.mean(axis=(1, 2, 3)) * 3 + x2[:, 0]).astype(int) % 3
    model.fit([x1, x2], labels, epochs=3, verbose=0)
    model.save(d / "two.keras")
    np.savez(d / "calib.npz", image=x1[:160], meta=x2[:160])
    np.savez(d / "eval.npz", image=x1[160:], meta=x2[160:], y=labels[160:])
    code, _, err = cli("convert", d / "two.keras", "-o", d / "two.onnx", "--normalize", "0-1")
    assert code == 0, err
    return d


def test_onnx_debug_and_denylist_on_a_model_with_two_inputs(tmp_path, two_inputs):
    d = two_inputs
    report = tmp_path / "debug.json"
    code, out, err = cli("convert", d / "two.onnx", "-o", tmp_path / "int8.onnx", "--recipe", "int8",
                         "-c", d / "calib.npz", "-e", d / "eval.npz", "--normalize", "0-1",
                         "--debug", "--debug-report", report)
    assert code == 0, err
    nodes = json.loads(report.read_text())["layers"]
    names = " ".join(e["name"] for e in nodes)
    # both branches (each fed from its own array of the calibration set) and the joined head are ranked
    assert all(f"/{layer}_1/" in names for layer in ("conv", "meta_dense", "probs")), names
    worst = next(e["name"] for e in nodes if e["op"] in ("Gemm", "Conv"))  # the worst node that has weights
    code, _, err = cli("convert", d / "two.onnx", "-o", tmp_path / "mixed.onnx", "--recipe", "int8",
                       "-c", d / "calib.npz", "-e", d / "eval.npz", "--normalize", "0-1", "--denylist", worst)
    assert code == 0, err
    assert _float_weight_nodes(tmp_path / "mixed.onnx") == {worst}
    assert not _float_weight_nodes(tmp_path / "int8.onnx")
    m = json.loads((tmp_path / "mixed.onnx.manifest.json").read_text())
    assert [t["name"] for t in m["inputs"]] == ["image", "meta"] and m["recipe"]["float_layers"] == [worst]
    assert m["accuracy"]["samples"] == 160 and m["accuracy"]["outputs"][0]["agreement"] >= 0.9


def test_onnx_quantization_leaves_nothing_in_the_working_folder(tmp_path, two_inputs, monkeypatch):
    """onnxruntime's symbolic shape inference gives up on this graph and, before it raises, saves its
    half-inferred model (sym_shape_infer_temp.onnx plus uuid-named .data weight files) into the current
    folder; convert falls back without it and must not leave those files in the user's folder."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    d = two_inputs
    code, _, err = cli("convert", d / "two.onnx", "-o", tmp_path / "int8.onnx", "--recipe", "int8",
                       "-c", d / "calib.npz", "--normalize", "0-1")
    assert code == 0, err
    assert sorted(p.name for p in cwd.iterdir()) == []
