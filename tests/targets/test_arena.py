"""The arena planner against the real arenas of published models (cached wheels, a few seconds).

ai-edge-litert's arena is read from its tensors' addresses (edgekit.engine.arena_measure); TFLite
Micro's from its own allocator (the tflite-micro wheel, unzipped into the cache). The plan must be
within 0.8-1.25 of both; what it cannot know (a custom op's scratch) is said, not guessed.
"""

from __future__ import annotations

import pytest

import published_models as published
from edgekit.engine.arena import plan_arena
from edgekit.engine.arena_measure import litert_arena_bytes, tflm_arena_bytes
from edgekit.targets import check_model

# A detector with fp16 weights, a float landmark model TFLM runs too, an int8 streaming wake word made
# for MCUs (resource variables, two subgraphs), a small float classifier.
NAMES = ("face_detection", "hand_recrop", "micro_okay_nabu", "oww_alexa")


@pytest.fixture(scope="module")
def models():
    return published.fetch_arena_models(NAMES)


@pytest.fixture(scope="module")
def tflm_site():
    return published.fetch_tflite_micro()


@pytest.mark.parametrize("name", NAMES)
def test_litert_plan_is_within_the_band_of_the_real_arena(models, name):
    path = models[name][1]
    plan = plan_arena(path.read_bytes(), "litert")
    assert 0.8 <= plan.planned_bytes / litert_arena_bytes(path) <= 1.25
    assert plan.certain


@pytest.mark.parametrize("name", ("hand_recrop", "micro_okay_nabu", "oww_alexa"))
def test_tflm_plan_is_within_the_band_of_the_real_arena(models, tflm_site, name):
    path = models[name][1]
    real = tflm_arena_bytes(path, tflm_site)
    plan = plan_arena(path.read_bytes(), "tflm")
    assert real is not None
    assert 0.8 <= plan.total_bytes / real["total"] <= 1.25
    assert 0.8 <= plan.planned_bytes / real["head"] <= 1.25


def test_fp16_weights_expanded_at_load_are_not_arena(models):
    plan = plan_arena(models["face_detection"][1].read_bytes(), "litert")
    assert plan.expanded_weight_bytes > 0  # 74 DEQUANTIZE of fp16 weights: float32 copies made once at load
    assert plan.peak_live_bytes <= plan.planned_bytes


def test_check_plans_for_the_targets_interpreter_and_states_uncertainty(tmp_path):
    (name, (_, path)), = published.fetch_arena_models(["selfie_segmentation"]).items()
    micro = check_model(path, "microcontroller")
    assert "Convolution2DTransposeBias not modelled" in micro.arena_caveat
    assert "not modelled" in micro.render().splitlines()[0]
    arena = [f for f in micro.findings if f.code == "arena"]
    assert arena and "not modelled" in arena[0].message
    pi = check_model(path, "raspberry-pi-4")
    assert pi.arena_bytes != micro.arena_bytes  # TFLite's im2col temporaries vs TFLM's reference kernels
    assert pi.to_dict()["arena_caveat"]


def test_a_micro_model_passes_the_microcontroller_with_its_persistent_tail_counted(models):
    report = check_model(models["micro_okay_nabu"][1], "microcontroller")
    plan = plan_arena(models["micro_okay_nabu"][1].read_bytes(), "tflm")
    assert report.compatible and report.arena_bytes == plan.total_bytes
    assert plan.persistent_bytes > plan.planned_bytes  # streaming state and bookkeeping dominate this model


def test_a_graph_too_big_to_place_falls_back_to_the_peak_and_says_so(models, monkeypatch):
    import edgekit.engine.arena as arena

    data = models["hand_recrop"][1].read_bytes()
    placed = plan_arena(data, "litert")
    monkeypatch.setattr(arena, "MAX_PLANNED_BUFFERS", 10)
    peak = plan_arena(data, "litert")
    assert peak.too_many and not peak.certain and "too many tensors" in peak.caveat()
    assert peak.planned_bytes == placed.peak_live_bytes <= placed.planned_bytes
