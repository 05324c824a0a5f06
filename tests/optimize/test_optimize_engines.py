"""optimize --engines: ONNX Runtime candidates beside the TFLite ones in one table, picked by the same rule."""

from __future__ import annotations

import json

import onnx
import pytest
from onnx import numpy_helper
from optimize_helpers import cli

FAST = ("--workers", "2", "--runs", "30", "--float-top-k", "1")


def test_digits_tflite_and_onnx_candidates_side_by_side_in_one_table(tmp_path, digits_keras, digits_npz):
    """The acceptance's first line: the digits CNN as int8 .onnx (>= 99% agreement with Keras, <= 0.35x the
    float .onnx) beside the same model as int8 .tflite, in one optimize table."""
    out = tmp_path / "digits.tflite"
    code, text, err = cli("optimize", digits_keras, "-o", out, "--engines", "tflite,onnx", "-c", digits_npz["calib"],
                          "-e", digits_npz["eval"], "--candidates", "fp32,int8,onnx:fp32,onnx:int8,onnx:int8-per-tensor",
                          "--max-accuracy-drop", "1", *FAST, "--json")
    assert code == 0, err
    doc = json.loads(text)
    rows = {r["name"]: r for r in doc["rows"]}
    assert doc["engines"] == ["tflite", "onnx"]
    assert {"fp32", "int8", "onnx:fp32", "onnx:int8", "onnx:int8-per-tensor"} <= set(rows)
    onnx8, tfl8 = rows["onnx:int8"], rows["int8"]
    assert onnx8["engine"] == "onnx" and "engine" not in tfl8  # TFLite journal keys stay as before
    assert onnx8["agreement"] >= 0.99 and onnx8["path"].endswith(".onnx") and tfl8["path"].endswith(".tflite")
    assert onnx8["size_bytes"] <= 0.35 * rows["onnx:fp32"]["size_bytes"]
    assert onnx8["size_ratio_fp32"] == pytest.approx(onnx8["size_bytes"] / rows["onnx:fp32"]["size_bytes"])
    assert tfl8["size_ratio_fp32"] == pytest.approx(tfl8["size_bytes"] / rows["fp32"]["size_bytes"])
    # onnx:int8 ran the node debugger: its worst node became the float variants, per channel and per tensor
    worst = doc["debug_reports"]["onnx"]["layers"][0]["name"]
    assert {f"onnx:int8+float({worst})", f"onnx:int8-per-tensor+float({worst})"} <= set(rows)
    def scale_sizes(path):
        return {numpy_helper.to_array(i).size for i in onnx.load(path).graph.initializer if i.name.endswith("_scale")}

    assert scale_sizes(rows["onnx:int8-per-tensor"]["path"]) == {1}  # per tensor: one scale per weight
    assert max(scale_sizes(onnx8["path"])) > 1
    pick = rows[doc["selection"]["pick"]]
    written = out.with_suffix(".onnx" if pick.get("engine") == "onnx" else ".tflite")
    assert doc["output"] == str(written) and written.read_bytes() == open(pick["path"], "rb").read()


def test_an_onnx_pick_is_written_with_its_own_suffix_and_bad_engines_are_refused(tmp_path, digits_keras, digits_npz):
    out = tmp_path / "m.tflite"
    code, text, err = cli("optimize", digits_keras, "-o", out, "--engines", "onnx", "--candidates", "onnx:fp32",
                          "-c", digits_npz["calib"], "-e", digits_npz["eval"], *FAST)
    assert code == 0, err
    assert "onnx:fp32" in text and "picked onnx:fp32: wrote" in text
    assert (tmp_path / "m.onnx").is_file() and (tmp_path / "m.onnx.manifest.json").is_file() and not out.exists()
    for args, words in ((("--engines", "tflite"), "converts to .onnx only"), (("--engines", "tpu"), "choose from")):
        code, _, err = cli("optimize", tmp_path / "m.onnx", "-o", tmp_path / "x.onnx", *args, "-e", digits_npz["eval"])
        assert code == 2 and words in err and "Traceback" not in err
    code, _, err = cli("optimize", digits_keras, "-o", out, "--engines", "onnx", "-e", digits_npz["eval"])
    assert code == 2 and "m.onnx: already exists" in err
