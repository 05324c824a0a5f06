"""The flatbuffer reader: real facts on real models, a one-line error (never a crash) on hostile bytes."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from edgekit.cli import main
from edgekit.errors import ModelLoadError
from edgekit.inspection import inspect_model, xnnpack_status
from edgekit.engine.tflite_info import load_model_info, read_model_info


def test_int8_and_fp32_digits(digits_models):
    q = load_model_info(digits_models("int8"))
    f = load_model_info(digits_models("fp32"))
    assert q.inputs[0].dtype == "int8" and q.inputs[0].scale and q.inputs[0].shape == (1, 8, 8, 1)
    assert q.inputs[0].shape_signature[0] == -1  # Keras' None batch
    assert f.inputs[0].dtype == "float32" and f.inputs[0].scale is None
    assert not any(o.is_float for o in q.ops)
    assert {o.name for o in f.ops if o.is_float} >= {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"}
    assert sum(q.histogram().values()) == len(q.ops) and q.histogram()[("CONV_2D", 3)] == 2
    # int8 weights are about a quarter of float32 ones (biases stay int32)
    assert 0.2 < q.weight_bytes / f.weight_bytes < 0.3
    assert f.weight_bytes < f.size_bytes and f.arena_bytes > q.arena_bytes > 0
    # per-channel quantized conv weights
    assert any(t.quant_channels > 1 for t in q.tensors if t.constant)


def test_dynamic_range_model_versions(digits_models):
    info = load_model_info(digits_models("dynamic"))
    assert ("FULLY_CONNECTED", 12) in info.histogram()
    fc = next(o for o in info.ops if o.name == "FULLY_CONNECTED")
    assert fc.is_float and "int8" in fc.weight_dtypes  # hybrid: float activations, int8 weights


def test_custom_op_seen(custom_op_model):
    info = load_model_info(custom_op_model)
    assert info.custom_ops == ("EdgekitMadeUpOp",) and info.flex_ops == ()


def test_hostile_bytes_give_one_line_errors(digits_models):
    data = digits_models("int8").read_bytes()
    rng = random.Random(7)
    outcomes = {"ok": 0, "refused": 0}
    cases = [data[:n] for n in (0, 7, 8, 16, 100, len(data) // 2, len(data) - 1)]
    for _ in range(300):
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        cases.append(bytes(b))
    for case in cases:
        try:
            read_model_info(case, label="m.tflite")
            outcomes["ok"] += 1
        except ModelLoadError as err:
            text = str(err)
            assert text.startswith("m.tflite: ") and "\n" not in text
            outcomes["refused"] += 1
    assert outcomes["refused"] >= 7  # the truncations at least
    # header mutations that lie about counts are refused, not walked for minutes
    b = bytearray(data)
    root = int.from_bytes(b[:4], "little")
    b[root:root + 4] = (2**31 - 1).to_bytes(4, "little")  # the root table's vtable offset
    with pytest.raises(ModelLoadError):
        read_model_info(bytes(b), label="m.tflite")


def test_inspect_with_and_without_manifest(digits_models, tmp_path, capsys):
    src = digits_models("int8")
    doc = inspect_model(src)
    assert doc["manifest"]["recipe"] == "int8" and doc["xnnpack"]["status"] == "applied"
    bare = tmp_path / "published.tflite"  # a downloaded model: no manifest next to it
    shutil.copy(src, bare)
    assert main(["inspect", str(bare), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["manifest"] is None and out["inputs"][0]["dtype"] == "int8"
    assert {"op": "CONV_2D", "version": 3, "count": 2} in out["histogram"]
    assert main(["inspect", str(bare)]) == 0
    text = capsys.readouterr().out
    assert "CONV_2D" in text and "manifest: none" in text and "XNNPACK: applied" in text
    # a broken manifest does not hide the model's facts
    (tmp_path / "published.manifest.json").write_text("{not json")
    assert main(["inspect", str(bare), "--no-xnnpack"]) == 0
    assert "manifest: unreadable" in capsys.readouterr().out


def test_xnnpack_not_checked_without_an_interpreter(monkeypatch, digits_models):
    import edgekit.engine.tflite as backends
    from edgekit.errors import MissingDependencyError

    def missing(name=None):
        raise MissingDependencyError("none here")

    monkeypatch.setattr(backends, "get_backend", missing)
    assert xnnpack_status(digits_models("int8").read_bytes())["status"] == "not-checked"


def test_xnnpack_refused_for_a_model_that_does_not_load(custom_op_model):
    assert xnnpack_status(custom_op_model.read_bytes())["status"] == "refused"


def test_inspect_bad_file_is_a_one_line_error(tmp_path, capsys):
    p = tmp_path / "x.tflite"
    p.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 40)
    assert main(["inspect", str(p)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {p}") and len(err.strip().splitlines()) == 1
    assert main(["inspect", str(tmp_path / "missing.tflite")]) == 2


def test_weight_format_names_fp16_and_hybrid(digits_models, capsys):
    """Issue 19 item 5: inspect names how the weights are stored, as a LiteRT user would."""
    from edgekit.cli import main

    formats = {r: load_model_info(digits_models(r)).weight_format for r in ("fp32", "fp16", "dynamic", "int8",
                                                                           "int16x8")}
    assert formats == {"fp32": "float32", "fp16": "float16", "dynamic": "hybrid", "int8": "int8",
                       "int16x8": "int16x8"}
    assert main(["inspect", str(digits_models("fp16"))]) == 0
    assert "float16 (dequantized to float32 at load)" in capsys.readouterr().out
    assert main(["inspect", str(digits_models("dynamic"))]) == 0
    assert "hybrid dynamic-range (int8 weights, float activations)" in capsys.readouterr().out
