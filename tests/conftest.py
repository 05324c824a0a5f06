"""Shared fixtures: real digits data, a real trained Keras CNN, and real converted models.

Everything is built once per test session in a temporary folder (training the
tiny CNN takes a few seconds on 2 cores). Tests that need TensorFlow use these;
unit tests do not touch them. The store and fleet tests also share a broken model (trained on
shuffled labels), EC key pairs, the real sshd on 127.0.0.1 and an `edgekit` CLI runner. With EDGEKIT_TEST_MODELS set (tests/prebuilt_models.py),
``digits`` and ``digits_models`` come from that prebuilt folder instead, so the runtime
tests run in environments without TensorFlow or scikit-learn.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import prebuilt_models  # tests/ is on sys.path (rootdir conftest, prepend import mode)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent / "profile"))  # tests/profile/sshd.py, for its conftest


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits: x_train/y_train, x_calib (300), x_test/y_test (450), labels."""
    from edgekit.digits import load_split

    prebuilt = prebuilt_models.folder()
    return prebuilt_models.load_digits(prebuilt / "digits.npz") if prebuilt else load_split(seed=0)


@pytest.fixture(scope="session")
def digits_keras(tmp_path_factory, digits) -> Path:
    """A trained digits CNN saved as .keras (Keras 3)."""
    from edgekit.digits import train_cnn

    model = train_cnn(digits, epochs=8)
    path = tmp_path_factory.mktemp("src") / "digits.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def digits_npz(tmp_path_factory, digits) -> dict[str, Path]:
    """calib.npz (x) and eval.npz (x, y, labels) files for the CLI."""
    d = tmp_path_factory.mktemp("data")
    np.savez(d / "calib.npz", x=digits.x_calib)
    np.savez(d / "eval.npz", x=digits.x_test, y=digits.y_test, labels=np.array(digits.labels))
    np.savez(d / "train.npz", x=digits.x_train, y=digits.y_train)
    return {"calib": d / "calib.npz", "eval": d / "eval.npz", "train": d / "train.npz"}


@pytest.fixture(scope="session")
def digits_models(tmp_path_factory, digits, request):
    """get(recipe) -> Path of digits-<recipe>.tflite converted by edgekit (with manifest), cached.

    Prebuilt (EDGEKIT_TEST_MODELS): a copy from that folder, so no test writes into the cache."""
    out = tmp_path_factory.mktemp("models")
    prebuilt = prebuilt_models.folder()
    cache: dict[str, Path] = {}

    def get(recipe: str) -> Path:
        if recipe not in cache:
            if prebuilt:
                src = prebuilt / f"digits-{recipe}.tflite"
                if not src.is_file():
                    raise RuntimeError(f"{src} was not prebuilt; add {recipe!r} to RECIPES in tests/prebuilt_models.py")
                cache[recipe] = prebuilt_models.copy_model(src, out)
            else:  # digits_keras only now: it trains with TensorFlow
                keras_path = request.getfixturevalue("digits_keras")
                cache[recipe] = prebuilt_models.convert_digits(keras_path, digits, out, recipe)
        return cache[recipe]

    return get


@pytest.fixture(scope="session", autouse=True)
def _every_written_manifest_matches_the_schema():
    """Every manifest the suite writes (through Manifest.save, in this process) is validated against
    the shipped JSON Schema, independently of the dataclass parser that wrote it."""
    import json

    import jsonschema

    from edgekit.manifest import SCHEMA_FILE, Manifest

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    save = Manifest.save

    def checked_save(self, path):
        written = save(self, path)
        validator.validate(json.loads(written.read_text()))
        return written

    Manifest.save = checked_save
    yield
    Manifest.save = save


@pytest.fixture(scope="session")
def two_io(tmp_path_factory, digits) -> dict[str, Path]:
    """The two-input, two-output Keras model and its data (prebuilt_models.build_two_io).

    Prebuilt (EDGEKIT_TEST_MODELS): the data and the converted files only, no Keras model."""
    d = tmp_path_factory.mktemp("two_io")
    prebuilt = prebuilt_models.folder()
    if prebuilt:
        for name in ("calib.npz", "eval.npz"):
            shutil.copyfile(prebuilt / "two_io" / name, d / name)
        return {"keras": None, "calib": d / "calib.npz", "eval": d / "eval.npz", "dir": d,
                "prebuilt": prebuilt / "two_io"}
    return prebuilt_models.build_two_io(digits, d)


@pytest.fixture(scope="session")
def two_io_models(two_io):
    """get(recipe) -> the two-input, two-output model converted by edgekit (with manifest), cached."""
    cache: dict[str, Path] = {}

    def get(recipe: str) -> Path:
        if recipe not in cache:
            if two_io.get("prebuilt"):
                cache[recipe] = prebuilt_models.copy_model(two_io["prebuilt"] / f"two_io-{recipe}.tflite",
                                                           two_io["dir"])
            else:
                cache[recipe] = prebuilt_models.convert_two_io(two_io, recipe)
        return cache[recipe]

    return get


@pytest.fixture(scope="session")
def published_models():
    """{short name: path} of real published .tflite models (tests/published_models.py), cached outside the repo."""
    import published_models as published

    return published.fetch()


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

    path = Path(__file__).resolve().parent / "profile" / "conftest.py"
    spec = importlib.util.spec_from_file_location("edgekit_tests_profile_conftest", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ssh_server = _profile_fixtures().ssh_server  # a real OpenSSH server on 127.0.0.1 (tests/profile/sshd.py)
