"""Fixtures for the profile tests: small real models and a real sshd on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import sshd  # tests/profile is on sys.path (rootdir conftest, prepend import mode)

HERE = Path(__file__).resolve().parent
FAKE_ADB_DIR = HERE / "fake_adb"
SAMPLES = HERE / "data"  # recorded benchmark_model output


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory):
    try:
        server = sshd.start(tmp_path_factory.mktemp("sshd"))
    except RuntimeError as err:
        pytest.fail(str(err))
    yield server
    sshd.stop(server)


@pytest.fixture(scope="session")
def ssh_opts(ssh_server, tmp_path_factory):
    from edgekit.profile.remote_ssh import SSHOptions

    return SSHOptions(key=str(ssh_server.key), port=ssh_server.port, options=ssh_server.ssh_options,
                      python=sys.executable, remote_dir=str(tmp_path_factory.mktemp("device")))


@pytest.fixture()
def fake_adb(tmp_path, monkeypatch):
    """A FAKE adb (tests/profile/fake_adb.py) first on PATH; returns (log path, set_output(sample path))."""
    bindir = tmp_path / "fake-bin"
    bindir.mkdir()
    exe = bindir / "adb"
    exe.write_text(f"#!{sys.executable}\n" + (HERE / "fake_adb.py").read_text())
    exe.chmod(0o755)
    log = tmp_path / "adb.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(tmp_path / "phone"))
    monkeypatch.setenv("FAKE_ADB_LOG", str(log))

    def use_output(sample: Path) -> None:
        monkeypatch.setenv("FAKE_ADB_OUTPUT", str(sample))

    use_output(SAMPLES / "2020-peak-memory-op-profiling.txt")
    return log, use_output


@pytest.fixture(scope="session")
def custom_op_model(digits_models, tmp_path_factory) -> Path:
    """The digits fp32 model with its first op turned into an unregistered custom op "EdgekitMadeUpOp"."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(digits_models("fp32")))
    code = model.operatorCodes[model.subgraphs[0].operators[0].opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = b"EdgekitMadeUpOp"
    out = tmp_path_factory.mktemp("custom") / "custom-op.tflite"
    flatbuffer_utils.write_model(model, str(out))
    return out


@pytest.fixture(scope="session")
def crashing_model(digits_models, tmp_path_factory) -> Path:
    """Structurally valid, semantically hostile: the first op's weights index set to -1 (SIGSEGV in LiteRT)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(digits_models("fp32")))
    model.subgraphs[0].operators[0].inputs[1] = -1
    out = tmp_path_factory.mktemp("hostile") / "crash.tflite"
    flatbuffer_utils.write_model(model, str(out))
    return out


@pytest.fixture(scope="session")
def two_io_model(two_io_models) -> Path:
    """The suite's 2-input, 2-output model (8x8x1 image + 4 features -> softmax(10) and one value;
    tests/prebuilt_models.build_two_io), fp32. TensorFlow puts its inputs in its own order (features first)."""
    return two_io_models("fp32")
