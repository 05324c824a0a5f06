"""Fixtures for the profile tests: small real models and a real sshd on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import sshd  # tests/profile is on sys.path (rootdir conftest, prepend import mode)

HERE = Path(__file__).resolve().parent
FAKE_ADB_DIR = HERE / "fake_adb"
SAMPLES = Path("/work/shared/samples/benchmark_model")


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
