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


NINE = {"raspberry-pi-3b", "raspberry-pi-4", "raspberry-pi-5", "raspberry-pi-zero-2w", "android-arm64",
        "coral-edge-tpu", "jetson-orin-nano", "x86-64-edge", "microcontroller"}


def test_profiles():
    assert NINE <= set(list_profiles())
    for name in list_profiles():
        p = load_profile(name)
        assert p.max_latency_ms > 0 and p.max_memory_mb > 0 and p.preferred_recipe in list_recipes()
        assert p.sources and p.description and p.cores >= 1 and p.memory_mb > 0
    with pytest.raises(DeviceProfileError, match="choose one of"):
        load_profile("raspberry-pi-9")


def test_profile_facts_that_drive_checks():
    pi3, tpu, mcu = load_profile("raspberry-pi-3b"), load_profile("coral-edge-tpu"), load_profile("microcontroller")
    assert (pi3.arch, pi3.os_bits, pi3.interpreter, pi3.compat) == ("armv7l", 32, "tflite-runtime", "tflite-runtime-2.14")
    assert tpu.int8_only and tpu.needs_static_shapes and tpu.op_set == "edgetpu"
    assert mcu.interpreter == "tflite-micro" and mcu.arena_kb and mcu.memory_mb == 0.25
    assert load_profile("raspberry-pi-4").interpreter == "ai-edge-litert"


MINIMAL = 'arch = "aarch64"\ncores = 4\nmemory_mb = 2048\n'


def test_user_profile_by_path(tmp_path):
    p = tmp_path / "my-board.toml"
    p.write_text(MINIMAL + 'max_latency_ms = 40\n')
    prof = load_profile(p)
    assert prof.name == "my-board" and prof.max_latency_ms == 40 and prof.interpreter == "ai-edge-litert"


@pytest.mark.parametrize("text,needle", [
    ("threads = 0\n", "threads must be positive"),
    ('connection = "telnet"\n', "connection"),
    ('accelerator = "npu"\n', "accelerator must be one of"),
    ("os_bits = 16\n", "os_bits must be 32 or 64"),
    ('ram_mb = 512\n', "unknown key 'ram_mb'"),
    ('cores = "four"\n', "cores must be int"),
    ("int8_only = 1\n", "int8_only must be bool"),
])
def test_bad_profile(tmp_path, text, needle):
    p = tmp_path / "dev.toml"
    lines = [ln for ln in MINIMAL.splitlines() if not ln.startswith(text.split(" ")[0] + " ")]
    p.write_text("\n".join(lines) + "\n" + text)
    with pytest.raises(DeviceProfileError, match=needle) as err:
        load_profile(p)
    assert str(p) in str(err.value)


def test_missing_required_field_names_field_and_file(tmp_path):
    p = tmp_path / "dev.toml"
    p.write_text('arch = "aarch64"\ncores = 4\n')
    with pytest.raises(DeviceProfileError, match="missing required field 'memory_mb'") as err:
        load_profile(p)
    assert str(p) in str(err.value)


def test_recipes_say_what_each_recipe_is_on_onnx_and_that_int8_float_io_is_int8_there(capsys):
    from edgekit.cli import main

    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    onnx = {lines[i].split()[0]: lines[i + 1].strip() for i in range(0, len(lines) - 1, 2)}
    assert onnx["int8-float-io"].startswith("ONNX: static QDQ int8, per channel, MinMax calibration, float32 I/O")
    assert "the same .onnx file as int8" in onnx["int8-float-io"] and "int8 I/O is TFLite only" in onnx["int8"]
    assert onnx["int16x8"] == "ONNX: no ONNX form (.tflite only)."
