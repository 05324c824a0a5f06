"""Recipes and device profiles: shipped files parse, user files by path, bad files refused."""

import pytest

from edgekit.devices import list_profiles, load_profile
from edgekit.errors import DeviceProfileError, RecipeError
from edgekit.recipes import list_recipes, load_recipe


def test_every_shipped_recipe_loads():
    names = list_recipes()
    assert {"fp32", "fp16", "dynamic", "int8", "int8-float-io", "int16x8"} <= set(names)
    for name in names:
        r = load_recipe(name)
        assert r.name == name and r.description


def test_recipe_semantics():
    assert load_recipe("int8").inference_input_type == "int8"
    assert load_recipe("int8-float-io").inference_input_type == "float32"
    assert load_recipe("int8-float-io").requires_calibration
    assert not load_recipe("dynamic").requires_calibration
    assert load_recipe("fp16").supported_types == ("float16",)
    assert "INT16" in load_recipe("int16x8").supported_ops[0]
    assert load_recipe("prune50-int8").prune_sparsity == 0.5


def test_user_recipe_by_path(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('description = "mine"\noptimizations = ["DEFAULT"]\n')
    r = load_recipe(p)
    assert r.name == "mine" and r.optimizations == ("DEFAULT",)


@pytest.mark.parametrize("text,needle", [
    ('optimisations = ["DEFAULT"]', "unknown key 'optimisations'"),
    ('supported_ops = ["FAST"]', "supported_ops has 'FAST'"),
    ('inference_input_type = "int4"', "inference_input_type"),
    ('inference_input_type = "int8"', "requires_calibration"),
    ("prune_sparsity = 1.5", "between 0 and 1"),
    ("requires_calibration = 1", "must be bool"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_recipe_files(tmp_path, text, needle):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(RecipeError, match=needle):
        load_recipe(p)


def test_unknown_recipe_lists_choices():
    with pytest.raises(RecipeError, match="choose one of: .*int8"):
        load_recipe("int7")
    with pytest.raises(RecipeError, match="no such"):
        load_recipe("missing/recipe.toml")


def test_profiles():
    assert {"raspberry-pi-4", "raspberry-pi-5", "android-arm64"} <= set(list_profiles())
    for name in list_profiles():
        p = load_profile(name)
        assert p.max_latency_ms > 0 and p.max_memory_mb > 0 and p.preferred_recipe in list_recipes()
    with pytest.raises(DeviceProfileError, match="choose one of"):
        load_profile("raspberry-pi-9")


def test_bad_profile(tmp_path):
    p = tmp_path / "dev.toml"
    p.write_text("threads = 0\n")
    with pytest.raises(DeviceProfileError, match="threads must be positive"):
        load_profile(p)
    p.write_text('connection = "telnet"\n')
    with pytest.raises(DeviceProfileError, match="connection"):
        load_profile(p)
