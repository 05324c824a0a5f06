"""Several inputs and outputs on a real two-input, two-output int8 model (issue 7).

The interpreter orders the inputs features, image (TensorFlow sorts them by name); the
manifest and the caller use image, features. Everything maps by name.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from edgekit.errors import InputValidationError
from edgekit.manifest import GuardThresholds, Manifest
from edgekit.runtime import EdgeModel, Policy


def _bare(path, image, features):
    """The bare interpreter through its signature runner: quantize, run, dequantize by hand."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=path.read_bytes())
    run = interp.get_signature_runner()
    details = run.get_input_details()
    feed = {}
    for name, x in (("image", image), ("features", features)):
        d = details[name]
        scale, zp = d["quantization"]
        q = np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8) if scale else x.astype(np.float32)
        feed[name] = q
    got = run(**feed)
    outs = {}
    for name, d in run.get_output_details().items():
        scale, zp = d["quantization"]
        outs[name] = (got[name].astype(np.float32) - zp) * scale if scale else got[name]
    return outs, {name: d["quantization"][0] for name, d in run.get_output_details().items()}


def test_manifest_has_stats_per_input_and_accuracy_per_output(multi):
    m = Manifest.load(multi["int8"])
    assert {t.name for t in m.inputs} == {"image", "features"} and {t.name for t in m.outputs} == {"scores", "value"}
    assert set(m.calibration.inputs) == {"image", "features"}
    assert m.input_stats("features").channels == 4 and m.input_stats("image").ood is not None
    assert [o.name for o in m.accuracy.outputs] == ["scores", "value"]
    assert m.accuracy.output("scores").agreement > 0.95 and m.accuracy.output("value").task == "regression"


def test_dict_input_matches_the_bare_interpreter(multi):
    e = multi["eval"]
    model = EdgeModel.load(multi["int8"])
    m = Manifest.load(multi["int8"])
    assert model.input_names == [t.name for t in m.inputs] and model.output_names == [t.name for t in m.outputs]
    assert [t.name for t in model.runner.inputs] == ["features", "image"]  # the interpreter's own order
    pred = model.predict({"features": e["features"][:64], "image": e["image"][:64]})
    want, steps = _bare(multi["int8"], e["image"][:64], e["features"][:64])
    for name in ("scores", "value"):
        np.testing.assert_allclose(pred[name], want[name], atol=steps[name] * 1.01)
    assert pred.output_names == model.output_names
    assert pred.outputs[model.output_names.index("value")] is pred["value"]
    # the same call as a list in input order, and one sample without the batch axis
    as_list = model.predict([e[name][:64] for name in model.input_names])
    np.testing.assert_array_equal(as_list["scores"], pred["scores"])
    one = model.predict({"image": e["image"][3], "features": e["features"][3]})
    assert one["scores"].shape == (10,) and one["value"].shape == (1,)
    assert one.output.shape == one[model.output_names[0]].shape
    np.testing.assert_allclose(one["value"], pred["value"][3], atol=1e-6)
    top1 = np.mean(np.array(pred.label).astype(int) == e["y"][:64])
    assert top1 > 0.85 and pred.top_k(2, output="scores")[0][0][0] == pred.label[0]


def test_ood_fires_when_only_one_input_is_out_of_distribution(multi):
    e = multi["eval"]
    model = EdgeModel.load(multi["int8"])
    clean = model.predict({"image": e["image"], "features": e["features"]})
    assert clean.flagged.mean() <= 0.03
    # clean images, features from somewhere else entirely
    odd_features = np.random.default_rng(0).uniform(-3, 3, e["features"][:50].shape).astype(np.float32)
    pred = model.predict({"image": e["image"][:50], "features": odd_features})
    assert pred.flagged.mean() >= 0.95
    scores = pred.ood_scores
    assert np.mean(scores["features"] > 1.0) >= 0.95 and np.mean(scores["image"] > 1.0) <= 0.05
    np.testing.assert_allclose(pred.ood_score, np.fmax(scores["image"], scores["features"]))
    failed = {c.name for c in pred.checks if not c.ok}
    assert "features.ood" in failed and "image.ood" not in failed
    inc = pred.incidents[0]
    assert inc["kind"] == "ood" and "(features)" in inc["reason"] and set(inc["input"]) == {"image", "features"}
    # and the other way round: noise images with their own (consistent) features
    noise = np.random.default_rng(1).uniform(0, 1, (50, 8, 8, 1)).astype(np.float32)
    from prebuilt_models import quadrant_means

    pred = model.predict({"image": noise, "features": quadrant_means(noise)})
    assert np.mean(pred.ood_scores["image"] > 1.0) >= 0.95 and pred.flagged.mean() >= 0.95


def test_fallback_replaces_flagged_rows_of_every_output(multi):
    e = multi["eval"]
    model = EdgeModel.load(multi["int8"], fallback=multi["fp32"], policy=Policy(on_ood="fallback"))
    feats = e["features"][:6].copy()
    feats[4:] = 5.0  # samples 4 and 5: features far outside calibration
    pred = model.predict({"image": e["image"][:6], "features": feats})
    assert pred.sources == ["model"] * 4 + ["fallback"] * 2
    fp32 = EdgeModel.load(multi["fp32"]).predict({"image": e["image"][4:6], "features": feats[4:]})
    for name in ("scores", "value"):
        np.testing.assert_allclose(pred[name][4:], fp32[name], atol=1e-6)
    assert pred.incidents[0]["samples"] == [4, 5]


def test_health_per_input_and_output(multi):
    e = multi["eval"]
    with EdgeModel.load(multi["int8"], reference=multi["fp32"], shadow=1.0) as model:
        for i in range(60):
            model.predict({"image": e["image"][i], "features": e["features"][i]})
        model.predict({"image": e["image"][:40], "features": np.full((40, 4), 0.9, np.float32)})
        h = model.health(wait_for_shadow=True)
    assert set(h["inputs"]) == {"image", "features"} and set(h["outputs"]) == {"scores", "value"}
    assert h["inputs"]["image"]["drift"] == "stable" and h["inputs"]["features"]["drift"] == "drifted"
    assert len(h["inputs"]["features"]["channels"]) == 4 and h["input"] == h["inputs"][model.input_names[0]]
    assert "top1_share" in h["outputs"]["scores"] and len(h["outputs"]["value"]["mean"]) == 1
    shadow = h["shadow"]
    assert shadow["compared"] == 100 and set(shadow["outputs"]) == {"scores", "value"}
    assert shadow["outputs"]["scores"]["disagreement_rate"] <= 0.1
    assert h["model"]["input_names"] == model.input_names and h["model"]["output_names"] == model.output_names


@pytest.mark.parametrize("bad, words", [
    ({"image": np.zeros((8, 8, 1))}, "missing 'features'"),
    ({"image": np.zeros((8, 8, 1)), "features": np.zeros(4), "extra": 1}, "unknown 'extra'"),
    ({"image": np.zeros((2, 8, 8, 1)), "features": np.zeros((3, 4))}, "disagree on the batch"),
    ({"image": np.zeros((8, 8, 1)), "features": np.zeros(5)}, "input 'features': input has shape"),
    (np.zeros((8, 8, 1)), "the model has 2 inputs"),
    ({"image": np.zeros((8, 8, 1)), "features": np.array([0, np.nan, 0, 0])}, "input 'features': input has NaN"),
])
def test_bad_multi_inputs_are_one_line_errors(multi, bad, words):
    model = EdgeModel.load(multi["int8"])
    with pytest.raises(InputValidationError, match=words.replace("(", "\\(")) as err:
        model.predict(bad)
    assert "\n" not in str(err.value)


def test_published_file_without_manifest_uses_signature_names(multi, tmp_path):
    bare = tmp_path / "published.tflite"
    shutil.copy(multi["int8"], bare)
    model = EdgeModel.load(bare)
    assert model.manifest is None and model.input_names == ["features", "image"]  # the interpreter's order
    e = multi["eval"]
    pred = model.predict({"image": e["image"][:4], "features": e["features"][:4]})
    want = EdgeModel.load(multi["int8"]).predict({"image": e["image"][:4], "features": e["features"][:4]})
    np.testing.assert_array_equal(pred["scores"], want["scores"])
    assert json.dumps(pred.to_dict())  # JSON-ready, outputs by name
    assert set(pred.to_dict()["outputs"]) == {"scores", "value"}


def _with_guard(src, tmp_path, **guard):
    """A copy of the model whose manifest carries a guard section (as edgekit audit writes it)."""
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    Manifest.load(src).replace(guard=GuardThresholds(target_fpr=0.01, set_by="test", **guard)).save(dst)
    return dst


def test_manifest_guard_sets_the_ood_threshold_unless_the_policy_does(int8_path, digits, tmp_path):
    strict = _with_guard(int8_path, tmp_path, ood_threshold=0.05)
    x = digits.x_test[:100]
    base = EdgeModel.load(int8_path).predict(x)
    guarded = EdgeModel.load(strict).predict(x)
    assert guarded.flagged.mean() > base.flagged.mean() + 0.5  # 0.05 flags most clean digits; 1.0 almost none
    np.testing.assert_array_equal(guarded.flagged, base.ood_score > 0.05)
    explicit = EdgeModel.load(strict, policy=Policy(ood_threshold=1.0)).predict(x)
    np.testing.assert_array_equal(explicit.flagged, base.flagged)


@pytest.mark.parametrize("signal", ["msp", "energy"])
def test_output_signal_flags_unsure_outputs_as_ood(int8_path, digits, tmp_path, signal):
    from edgekit.runtime.output_score import output_score

    x = digits.x_test[:200]
    plain = EdgeModel.load(int8_path).predict(x)
    scores = output_score(plain.output, signal, probabilities=True)
    limit = float(np.quantile(scores, 0.9))  # the least sure tenth is flagged
    model = EdgeModel.load(_with_guard(int8_path, tmp_path, output_signal=signal, output_threshold=limit),
                           policy=Policy(ood_threshold=None))
    pred = model.predict(x)
    np.testing.assert_array_equal(pred.flagged, scores > limit)
    assert 5 <= pred.flagged.sum() <= 25
    assert pred.incidents[0]["kind"] == "ood" and "output_ood" in pred.incidents[0]["reason"]
    check = {c.name: c for c in pred.checks}[f"output_ood ({signal})"]
    assert check.kind == "ood" and not check.ok


def test_output_score_maths():
    from edgekit.runtime.output_score import output_score

    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(output_score(logits, "msp"), 1 - p.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(output_score(p, "msp", probabilities=True), 1 - p.max(axis=1), rtol=1e-6)
    np.testing.assert_allclose(output_score(logits, "energy"), -np.log(np.exp(logits).sum(axis=1)), rtol=1e-6)


def test_run_takes_an_npz_per_input_name(multi, tmp_path, capsys):
    from edgekit.cli import main

    e = multi["eval"]
    np.savez(tmp_path / "two.npz", image=e["image"][:2], features=e["features"][:2])
    code = main(["run", str(multi["int8"]), str(tmp_path / "two.npz"), "--json"])
    rec = json.loads(capsys.readouterr().out.splitlines()[0])
    want = EdgeModel.load(multi["int8"]).predict({"image": e["image"][:2], "features": e["features"][:2]})
    assert code in (0, 1) and rec["top_k"][0][0][0] == want.label[0] and set(rec["outputs"]) == {"scores", "value"}
    np.savez(tmp_path / "bad.npz", image=e["image"][:2])
    assert main(["run", str(multi["int8"]), str(tmp_path / "bad.npz")]) == 2
    assert "missing 'features'" in capsys.readouterr().err
