"""Shared fixtures: real digits data, a real trained Keras CNN, and real converted models.

Everything is built once per test session in a temporary folder (training the
tiny CNN takes a few seconds on 2 cores). Tests that need TensorFlow use these;
unit tests do not touch them. With EDGEKIT_TEST_MODELS set (tests/prebuilt_models.py),
``digits`` and ``digits_models`` come from that prebuilt folder instead, so the runtime
tests run in environments without TensorFlow or scikit-learn.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import prebuilt_models  # tests/ is on sys.path (rootdir conftest, prepend import mode)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


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
