"""The candidate list."""

from __future__ import annotations

from edgekit.optimize.space import Candidate, base_candidates, float_layer_candidates, select_names


def names(cands):
    return [c.name for c in cands]


def test_without_calibration_no_int8():
    assert names(base_candidates(calibration=False, keras=True, train=True))[:3] == ["fp32", "fp16", "dynamic"]
    assert not [n for n in names(base_candidates(calibration=False, keras=True, train=False)) if "int8" in n]


def test_pruning_needs_keras_and_training_data():
    with_train = names(base_candidates(calibration=True, keras=True, train=True))
    assert {"prune50-dynamic", "prune80-dynamic", "prune50-int8-float-io", "prune80-int8-float-io"} <= set(with_train)
    assert not [n for n in names(base_candidates(calibration=True, keras=False, train=True)) if "prune" in n]


def test_the_debug_trial_is_int8_float_io_and_variants_follow_its_ranking():
    base = base_candidates(calibration=True, keras=True, train=False)
    assert [c.name for c in base if c.debug] == ["int8-float-io"]
    v = float_layer_candidates(["sensitive", "probs", "conv2", "conv1"], k_max=3)
    assert [c.float_layers for c in v] == [("sensitive",), ("sensitive", "probs"), ("sensitive", "probs", "conv2")]
    assert float_layer_candidates(["only"], k_max=3)[0].float_layers == ("only",)
    assert len(float_layer_candidates(["only"], k_max=3)) == 1


def test_round_trip_and_key_params():
    c = Candidate("x", "int8-float-io", ("a", "b"), 0.5, debug=True)
    assert Candidate.from_dict(c.to_dict()) == c
    assert "debug" not in c.params()


def test_select_names():
    base = base_candidates(calibration=True, keras=True, train=False)
    assert names(select_names(base, ["dynamic", "fp32"])) == ["fp32", "dynamic"]
    assert select_names(base, None) == base


def test_onnx_candidates_try_per_channel_and_per_tensor_with_each_calibration_method():
    from edgekit.optimize.space import float_bases, onnx_candidates
    from edgekit.optimize.trials import recipe_of

    assert names(onnx_candidates(calibration=False)) == ["onnx:fp32", "onnx:fp16", "onnx:dynamic"]
    static = [c for c in onnx_candidates(calibration=True) if c.recipe == "int8"]
    assert {(c.per_channel, c.calibration_method) for c in static} == {
        (pc, m) for pc in (True, False) for m in ("MinMax", "Entropy", "Percentile")}
    assert not [c for c in onnx_candidates(calibration=True) if c.recipe == "int8-float-io"]  # same file as int8
    debugged = [c for c in static if c.debug]
    assert names(debugged) == ["onnx:int8"]
    variants = float_layer_candidates(["Mul@23", "Conv@16"], 2, float_bases(debugged[0]))
    assert names(variants) == ["onnx:int8+float(Mul@23)", "onnx:int8+float(Mul@23,Conv@16)",
                               "onnx:int8-per-tensor+float(Mul@23)", "onnx:int8-per-tensor+float(Mul@23,Conv@16)"]
    assert [c.per_channel for c in variants] == [True, True, False, False] and not any(c.debug for c in variants)
    rec = recipe_of(variants[2])
    assert rec.name == "int8" and rec.onnx.per_channel is False and rec.onnx.calibration_method == "MinMax"
    assert recipe_of(Candidate("int8", "int8")) == "int8"


def test_tflite_journal_keys_do_not_change_and_onnx_ones_carry_their_settings():
    assert Candidate("int8", "int8").params() == {"name": "int8", "recipe": "int8", "float_layers": [], "prune": None}
    c = Candidate("onnx:int8-per-tensor", "int8", engine="onnx", per_channel=False, calibration_method="MinMax")
    assert c.params()["engine"] == "onnx" and c.params()["per_channel"] is False
    assert Candidate.from_dict(c.to_dict()) == c
