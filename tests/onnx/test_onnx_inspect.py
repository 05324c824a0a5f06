"""``edgekit inspect m.onnx``: opset, IR version, op histogram (subgraphs included), initializer sizes,
float or QDQ, read with the onnx package (no session); ``edgekit run`` and ``edgekit check`` on an .onnx;
all through the real CLI process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _edgekit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from edgekit.cli import entry; entry()", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_inspect_onnx_json_and_text(digits_onnx):
    done = _edgekit("inspect", str(digits_onnx), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["format"] == "onnx" and doc["ir_version"] >= 7 and doc["opsets"]["ai.onnx"] >= 13
    assert doc["quantization"] == "float"
    hist = {h["op"]: h["count"] for h in doc["histogram"]}
    assert hist["Conv"] == 2 and hist["Softmax"] == 1 and doc["op_count"] == sum(hist.values())
    # the CNN's 71,754 float32 parameters are the initializers' bytes (plus a few shape constants)
    assert 4 * 71_754 <= doc["initializers"]["bytes"] < 4 * 71_754 + 1024
    assert doc["inputs"] == [{"name": "image", "shape": [-1, 8, 8, 1], "dtype": "float32"}]
    assert doc["manifest"]["recipe"] == "fp32"
    text = _edgekit("inspect", str(digits_onnx)).stdout
    assert "IR version" in text and "float" in text and "largest initializers:" in text


def test_inspect_cut_onnx_is_one_line_exit_2(digits_onnx, tmp_path):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(digits_onnx.read_bytes()[:3000])
    done = _edgekit("inspect", str(cut))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {cut}: not a readable ONNX model (DecodeError); check the file"]


def test_quantization_kind():
    from edgekit.engine.onnx_info import quantization_kind

    assert quantization_kind(["Conv", "QuantizeLinear", "DequantizeLinear"]) == "QDQ"
    assert quantization_kind(["QLinearConv"]) == "integer ops"
    assert quantization_kind(["Conv", "Relu"]) == "float"


def test_run_onnx_cli(digits_onnx, digits, tmp_path):
    import numpy as np

    x = tmp_path / "x.npy"
    np.save(x, digits.x_test[:3])
    done = _edgekit("run", str(digits_onnx), str(x))
    assert done.returncode == 0, done.stderr
    top1 = [int(line.split(": ")[1].split()[0]) for line in done.stdout.splitlines() if line.startswith(f"{x}[")]
    assert top1 == digits.y_test[:3].tolist()
    assert "sums_to_1" in done.stdout


def test_check_onnx_refuses_tflite_only_accelerators_and_names_the_runtime(digits_onnx):
    for target, code in (("coral-edge-tpu", "tflite-only"), ("microcontroller", "tflite-only"),
                         ("raspberry-pi-3b", "no-onnxruntime")):
        done = _edgekit("check", str(digits_onnx), "--target", target, "--json")
        assert done.returncode == 1, done.stderr
        report = json.loads(done.stdout)
        assert not report["compatible"] and report["findings"][0]["code"] == code
    done = _edgekit("check", str(digits_onnx), "--target", "raspberry-pi-5")
    assert done.returncode == 0, done.stderr
    assert "compatible: 0 error(s)" in done.stdout
    assert "needs ONNX Runtime implementing ai.onnx opset 15 and IR version 8" in done.stdout
