"""Shared fixtures: real digits data, a real trained Keras CNN, and real converted models.

Everything is built once per test session in a temporary folder (training the
tiny CNN takes a few seconds on 2 cores). Tests that need TensorFlow use these;
unit tests do not touch them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")



@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits: x_train/y_train, x_calib (300), x_test/y_test (450), labels."""
    from edgekit.digits import load_split

    return load_split(seed=0)


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
def digits_models(tmp_path_factory, digits_keras, digits):
    """get(recipe) -> Path of digits-<recipe>.tflite converted by edgekit (with manifest), cached."""
    import edgekit

    out = tmp_path_factory.mktemp("models")
    cache: dict[str, Path] = {}

    def get(recipe: str) -> Path:
        if recipe not in cache:
            result = edgekit.convert(
                digits_keras,
                out / f"digits-{recipe}.tflite",
                recipe=recipe,
                calibration=digits.x_calib,
                eval_data=(digits.x_test, digits.y_test),
                labels=digits.labels,
                preprocessing="digits",
                quiet=True,
            )
            cache[recipe] = result.output
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


def quadrant_means(x: np.ndarray) -> np.ndarray:
    """A second, real input for the two-input model: the mean of each 4x4 quadrant of a digit."""
    return np.stack([x[:, :4, :4].mean((1, 2, 3)), x[:, :4, 4:].mean((1, 2, 3)),
                     x[:, 4:, :4].mean((1, 2, 3)), x[:, 4:, 4:].mean((1, 2, 3))], axis=1).astype(np.float32)


@pytest.fixture(scope="session")
def two_io(tmp_path_factory, digits) -> dict[str, Path]:
    """A trained two-input, two-output Keras model and its data, as a user would have them.

    Inputs ``image`` (8x8x1 digit) and ``features`` (its four quadrant means); outputs ``scores``
    (softmax over 10 classes) and ``value`` (the digit / 9, a regression). calib.npz and eval.npz
    hold one array per input name; eval.npz also ``y`` (labels of scores) and ``y_value``.
    """
    import keras

    keras.utils.set_random_seed(0)
    img = keras.Input((8, 8, 1), name="image")
    feat = keras.Input((4,), name="features")
    h = keras.layers.Flatten()(keras.layers.Conv2D(8, 3, activation="relu")(img))
    h = keras.layers.Dense(32, activation="relu")(keras.layers.Concatenate()([h, feat]))
    model = keras.Model([img, feat], [keras.layers.Dense(10, activation="softmax", name="scores")(h),
                                      keras.layers.Dense(1, name="value")(h)])
    model.compile("adam", {"scores": "sparse_categorical_crossentropy", "value": "mse"})
    value = digits.y_train.astype(np.float32)[:, None] / 9.0
    model.fit({"image": digits.x_train, "features": quadrant_means(digits.x_train)},
              {"scores": digits.y_train, "value": value}, epochs=6, batch_size=32, verbose=0)
    d = tmp_path_factory.mktemp("two_io")
    model.save(d / "two_io.keras")
    np.savez(d / "calib.npz", image=digits.x_calib, features=quadrant_means(digits.x_calib))
    np.savez(d / "eval.npz", image=digits.x_test, features=quadrant_means(digits.x_test), y=digits.y_test,
             y_value=digits.y_test.astype(np.float32)[:, None] / 9.0)
    return {"keras": d / "two_io.keras", "calib": d / "calib.npz", "eval": d / "eval.npz", "dir": d}


@pytest.fixture(scope="session")
def two_io_models(two_io):
    """get(recipe) -> the two-input, two-output model converted by edgekit (with manifest), cached."""
    import edgekit

    cache: dict[str, Path] = {}

    def get(recipe: str) -> Path:
        if recipe not in cache:
            cache[recipe] = edgekit.convert(two_io["keras"], two_io["dir"] / f"two_io-{recipe}.tflite",
                                            recipe=recipe, calibration=two_io["calib"], eval_data=two_io["eval"],
                                            quiet=True).output
        return cache[recipe]

    return get
