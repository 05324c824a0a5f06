"""edgekit profile on an ONNX model: here and over SSH (a real sshd on 127.0.0.1), through the engine's
standalone onnx_interp.py, which the child carries to the device as it carries tflite_interp.py."""

import json
import sys

import pytest

from edgekit.cli import main

import onnxruntime  # noqa: E402,F401  (the dev extra installs it: missing, this fails rather than skips)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def digits_onnx(digits_keras, digits, tmp_path_factory):
    import edgekit

    out = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    return edgekit.convert(digits_keras, out, recipe="fp32", calibration=digits.x_calib, quiet=True).output


@pytest.mark.parametrize("where", ["local", "ssh"])
def test_an_onnx_model_profiles_here_and_over_ssh(where, digits_onnx, ssh_server, tmp_path, capsys):
    args = ["profile", digits_onnx, "--runs", 30, "--warmup", 3, "--json", tmp_path / "p.json"]
    if where == "ssh":
        args += ["--host", ssh_server.host, "--ssh-key", ssh_server.key, "--ssh-port", ssh_server.port,
                 "--remote-python", sys.executable, "--remote-dir", tmp_path / "device"]
        for opt in ssh_server.ssh_options:
            args += ["--ssh-option", opt]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    doc = json.loads((tmp_path / "p.json").read_text())
    row = doc["rows"][0]
    assert row["interpreter"]["package"] == "onnxruntime" and row["latency_ms"]["count"] == 30
    assert row["inputs"][0]["name"] == "image" and row["inputs"][0]["shape"] == [1, 8, 8, 1]
    assert "onnxruntime" in out


def test_adb_refuses_an_onnx_model_in_one_line(digits_onnx, tmp_path, capsys):
    code, _, err = run(capsys, "profile", digits_onnx, "--adb", "phone", "--benchmark-binary", tmp_path / "bm")
    assert code == 2 and err.count("\n") == 1 and "takes .tflite only" in err, err
