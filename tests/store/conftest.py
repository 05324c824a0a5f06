"""Fixtures for the store tests: real digits models (good fp32, int8, dynamic; a broken one trained on
shuffled labels), EC key pairs made by openssl, the profile tests' real sshd, and an `edgekit` CLI runner.

The probe's verdict cache goes to a per-session folder, never the user's ~/.cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("EDGEKIT_CACHE_DIR", tempfile.mkdtemp(prefix="edgekit-test-cache-"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profile"))  # tests/profile/sshd.py, for its conftest


@pytest.fixture(scope="session")
def good(digits_models) -> Path:
    return digits_models("fp32")


@pytest.fixture(scope="session")
def good_int8(digits_models) -> Path:
    return digits_models("int8")


@pytest.fixture(scope="session")
def good_dynamic(digits_models) -> Path:
    return digits_models("dynamic")


@pytest.fixture(scope="session")
def broken(tmp_path_factory, digits) -> Path:
    """A digits CNN trained like the good one but on shuffled labels: about 10% top-1 (chance)."""
    import dataclasses

    import edgekit
    from edgekit.digits import train_cnn

    shuffled = dataclasses.replace(digits, y_train=np.random.default_rng(1).permutation(digits.y_train))
    out = tmp_path_factory.mktemp("broken")
    keras_path = out / "broken.keras"
    train_cnn(shuffled, epochs=8).save(keras_path)
    res = edgekit.convert(keras_path, out / "broken-fp32.tflite", recipe="fp32", calibration=digits.x_calib,
                          eval_data=(digits.x_test, digits.y_test), labels=digits.labels,
                          preprocessing="digits", quiet=True)
    return res.output


def _keypair(folder: Path, name: str) -> tuple[Path, Path]:
    key, pub = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True,
                   capture_output=True)
    return key, pub


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    """Two EC P-256 key pairs: (key, pub) for "ours" and for "other"."""
    d = tmp_path_factory.mktemp("keys")
    return {"ours": _keypair(d, "ours"), "other": _keypair(d, "other")}


@pytest.fixture()
def copy_model(tmp_path):
    """copy_model(path, name) -> a copy of the model and its manifest under tmp_path (safe to sign or damage)."""
    import shutil

    from edgekit.manifest import manifest_path_for

    def make(src: Path, name: str = "model") -> Path:
        dest = tmp_path / "models" / f"{name}.tflite"
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(src, dest)
        shutil.copyfile(manifest_path_for(src), manifest_path_for(dest))
        return dest

    return make


@pytest.fixture()
def cli(capsys):
    """cli(*args) -> (exit code, stdout, stderr) of the real edgekit CLI in this process."""
    from edgekit.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _profile_fixtures():
    """tests/profile/conftest.py as a module of its own name, to share its real-sshd fixture."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "profile" / "conftest.py"
    spec = importlib.util.spec_from_file_location("edgekit_tests_profile_conftest", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ssh_server = _profile_fixtures().ssh_server  # a real OpenSSH server on 127.0.0.1 (tests/profile/sshd.py)
