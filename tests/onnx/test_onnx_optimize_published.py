"""The acceptance's real-model line: ``optimize`` on a published ONNX model beats plain quantization, with a
higher agreement with the float model at the same size budget, by choosing calibration and per-channel settings
(or nodes kept in float). The model: PaddleOCR's text-direction classifier (MobileNetV3, opset 11) from
rapidocr-onnxruntime's wheel, fetched at test time into ~/.cache/edgekit/published (tests/published_models.py);
the data: text lines drawn on real photo crops, upright or upside down (published_models.text_lines)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.cli import main

CANDIDATES = "onnx:int8,onnx:int8-entropy,onnx:int8-percentile,onnx:int8-per-tensor"  # the int8 family, to keep it short
BUDGET = ("--max-accuracy-drop", "2", "--max-size-kb", "320")  # plain int8: 304 KB, 2.6 points of disagreement


@pytest.fixture(scope="module")
def text_direction(tmp_path_factory):
    import published_models as published

    try:
        model = published.fetch(*published.OCR_WHEEL)["text_direction"]
    except RuntimeError as err:  # the registry must be reachable (it is for CI): fail, never skip silently
        pytest.fail(str(err))
    d = tmp_path_factory.mktemp("ocr")
    np.savez(d / "calib.npz", x=published.text_lines(200, seed=7)[0])
    np.savez(d / "eval.npz", x=published.text_lines(1000, seed=1)[0])  # no labels: drop = disagreement
    return {"model": model, "calib": d / "calib.npz", "eval": d / "eval.npz"}


@pytest.mark.slow
def test_optimize_beats_plain_int8_on_a_published_onnx_classifier(tmp_path, text_direction, capsys):
    out = tmp_path / "cls.onnx"
    code = main(["optimize", str(text_direction["model"]), "-o", str(out), "-c", str(text_direction["calib"]),
                 "-e", str(text_direction["eval"]), *BUDGET, "--candidates", CANDIDATES, "--workers", "2", "--runs", "50", "--float-top-k", "1",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    rows = {r["name"]: r for r in doc["rows"]}
    plain, pick = rows["onnx:int8"], rows[doc["selection"]["pick"]]
    budget = 320 * 1024
    assert plain["size_bytes"] <= budget and pick["size_bytes"] <= budget  # the same size budget
    assert plain["drop_points"] > 2.0  # plain int8 misses the accuracy budget...
    assert pick["agreement"] > plain["agreement"] and pick["drop_points"] <= 2.0  # ...the pick meets it
    assert pick["recipe"] == "int8" and pick["name"] != "onnx:int8"
    m = json.loads(out.with_name("cls.onnx.manifest.json").read_text())
    assert m["model"]["sha256"] == pick["sha256"] and m["recipe"]["onnx"]["quantization"] == "static"
    assert {"onnx:int8-per-tensor", "onnx:int8-percentile", "onnx:int8-entropy"} <= set(rows)
