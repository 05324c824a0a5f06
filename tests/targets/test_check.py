"""edgekit check flags each planted problem in real converted models and passes a clean int8 model."""

from __future__ import annotations

import json
import subprocess
import sys


from edgekit.cli import main
from edgekit.engine.safeload import verdict
from edgekit.engine.tflite import get_backend
from edgekit.targets import check_model

MADE_UP_OP = "EdgekitMadeUpOp"  # the code conftest.custom_op_model plants


def codes(report, severity="error"):
    return {f.code for f in report.findings if f.severity == severity}


def test_float_model_on_the_edge_tpu_is_flagged(digits_models):
    report = check_model(digits_models("fp32"), "coral-edge-tpu")
    assert not report.compatible
    (f,) = [f for f in report.errors if f.code == "float-op"]
    assert "CONV_2D" in f.message and "--recipe int8" in f.message
    # the same model is fine where floats run
    assert check_model(digits_models("fp32"), "raspberry-pi-4").compatible


def test_clean_int8_model_passes_everywhere_it_should(static_int8):
    for target in ("raspberry-pi-4", "raspberry-pi-3b", "coral-edge-tpu", "microcontroller", "x86-64-edge"):
        report = check_model(static_int8, target)
        assert report.compatible, (target, report.render())
    tpu = check_model(static_int8, "coral-edge-tpu")
    assert codes(tpu, "warning") == {"compile"}  # every op is in the Edge TPU set; only the compiler step is left
    # "compatible" with raspberry-pi-3b is true: the real tflite-runtime 2.14 loads and runs it
    code = ("import sys, numpy as np; from tflite_runtime.interpreter import Interpreter\n"
            "i = Interpreter(model_path=sys.argv[1]); i.allocate_tensors(); d = i.get_input_details()[0]\n"
            "i.set_tensor(d['index'], np.zeros(d['shape'], d['dtype'])); i.invoke(); print('ran')")
    out = subprocess.run([sys.executable, "-c", code, str(static_int8)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ran", out.stderr[-500:]


def test_dynamic_batch_int8_is_refused_where_static_shapes_are_needed(digits_models):
    report = check_model(digits_models("int8"), "coral-edge-tpu")
    assert "dynamic-shape" in codes(report)
    assert "SHAPE" in next(f.message for f in report.findings if f.code == "cpu-fallback")
    assert check_model(digits_models("int8"), "raspberry-pi-4").compatible


def test_custom_op_is_flagged_and_really_does_not_load(custom_op_model):
    report = check_model(custom_op_model, "raspberry-pi-4")
    (f,) = [f for f in report.errors if f.code == "custom-op"]
    assert MADE_UP_OP in f.message
    # the finding is true: the real interpreter refuses the file (in the probe's child process)
    result = verdict(custom_op_model.read_bytes(), get_backend("ai-edge-litert"), None, use_disk=False)
    assert not result.startswith("ok") and MADE_UP_OP in result


def test_custom_op_only_xnnpack_runs(with_custom_op):
    """Convolution2DTransposeBias: no builtin kernel anywhere; XNNPACK (ai-edge-litert) runs it itself."""
    path = with_custom_op("Convolution2DTransposeBias")
    on_pi4 = check_model(path, "raspberry-pi-4")
    assert on_pi4.compatible and "custom-op" in codes(on_pi4, "warning")
    on_pi3 = check_model(path, "raspberry-pi-3b")
    (f,) = [f for f in on_pi3.errors if f.code == "custom-op"]
    assert "ai-edge-litert" in f.message


def test_select_tf_op_is_flagged(flex_op_model):
    report = check_model(flex_op_model, "raspberry-pi-5")
    assert [f.code for f in report.errors] == ["flex-op"] and "FlexSoftmax" in report.errors[0].message


def test_float_io_conversions_fall_back_but_do_not_fail_the_edge_tpu(digits_models):
    report = check_model(digits_models("int8-float-io"), "coral-edge-tpu")
    assert "float-op" not in codes(report)
    assert any("QUANTIZE" in f.message and "DEQUANTIZE" in f.message for f in report.warnings)


def test_op_version_too_new_for_tflite_runtime_2_14(digits_models):
    path = digits_models("dynamic")
    report = check_model(path, "raspberry-pi-3b")
    (f,) = [f for f in report.errors if f.code == "op-version"]
    assert "FULLY_CONNECTED v12" in f.message and "--compat tflite-runtime-2.14" in f.message
    assert check_model(path, "raspberry-pi-4").compatible  # ai-edge-litert runs v12
    # the finding is true: the real tflite-runtime 2.14 refuses it (its own process: it cannot share one)
    code = ("import sys; from tflite_runtime.interpreter import Interpreter\n"
            "try:\n Interpreter(model_path=sys.argv[1])\nexcept ValueError as e: print(e)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert "FULLY_CONNECTED' version '12'" in out.stdout


def test_model_too_big_for_the_microcontroller(big_dense_model):
    report = check_model(big_dense_model, "microcontroller")
    (f,) = [f for f in report.errors if f.code == "size"]
    assert "512 KB" in f.message
    assert report.weight_bytes > 512 * 1024
    assert check_model(big_dense_model, "raspberry-pi-4").compatible


def test_memory_estimate_against_ram(big_dense_model, tmp_path):
    tiny = tmp_path / "tiny.toml"
    tiny.write_text('arch = "aarch64"\ncores = 1\nmemory_mb = 0.5\n')
    report = check_model(big_dense_model, tiny)
    (f,) = [f for f in report.errors if f.code == "memory"]
    assert "RAM" in f.message


def test_cli_exit_codes_and_json(digits_models, static_int8, capsys, tmp_path):
    assert main(["check", str(digits_models("fp32")), "--target", "coral-edge-tpu"]) == 1
    out = capsys.readouterr().out
    assert "NOT compatible" in out and "float-op" in out
    assert main(["check", str(static_int8), "--target", "raspberry-pi-4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["compatible"] is True and doc["target"] == "raspberry-pi-4"
    assert main(["check", str(static_int8), "--target", "raspberry-pi-9"]) == 2
    assert "choose one of" in capsys.readouterr().err
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model at all, just text")
    assert main(["check", str(junk), "--target", "raspberry-pi-4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_check_refuses_what_no_interpreter_can_load(digits_models, tmp_path, capsys):
    """check runs the load path's structural validation: a hostile index is exit 2, never "compatible"."""
    from hostile_models import hostile_variants  # tests/ is on sys.path

    for name, path in hostile_variants(digits_models("int8"), tmp_path).items():
        assert main(["check", str(path), "--target", "raspberry-pi-4"]) == 2, name
        err = capsys.readouterr().err
        assert err.startswith(f"error: {path}: subgraph 0 ") and len(err.strip().splitlines()) == 1, err
        assert "refers to" in err
