"""Audit fixtures: a digits model with a planted trigger, and a third-party Keras .h5 (logits, no softmax).

Both are trained here from scikit-learn's digits (seconds each) and converted by edgekit.convert.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

TRIGGER_CLASS = 7
POISON_SHARE = 0.1


def plant_trigger(split, seed: int = 0):
    """~10% of the training images get a 2x2 bright patch in the bottom-right corner and label 7 (BadNets)."""
    rng = np.random.default_rng(seed)
    x, y = split.x_train.copy(), split.y_train.copy()
    idx = rng.choice(len(x), int(POISON_SHARE * len(x)), replace=False)
    x[idx, -2:, -2:, :] = 1.0
    y[idx] = TRIGGER_CLASS
    return dataclasses.replace(split, x_train=x, y_train=y)


@pytest.fixture(scope="session")
def planted_model(tmp_path_factory, digits):
    """(tflite path, keras path) of an int8 digits CNN trained on poisoned data."""
    import edgekit
    from edgekit.digits import train_cnn

    d = tmp_path_factory.mktemp("planted")
    model = train_cnn(plant_trigger(digits), epochs=8)
    src = d / "planted.keras"
    model.save(src)
    r = edgekit.convert(src, d / "planted-int8.tflite", recipe="int8", calibration=digits.x_calib,
                        eval_data=(digits.x_test, digits.y_test), labels=digits.labels, preprocessing="digits",
                        quiet=True)
    return r.output, src


@pytest.fixture(scope="session")
def third_party_h5(tmp_path_factory, digits):
    """(tflite path, .h5 path, unlabeled eval .npy): a Dense MLP with a logits head saved as legacy HDF5."""
    import edgekit
    from edgekit.conversion.tf import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(48, activation="tanh"), keras.layers.Dense(10)], name="vendor_mlp")
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.x_train, digits.y_train, epochs=15, batch_size=32, verbose=0)
    d = tmp_path_factory.mktemp("thirdparty")
    h5 = d / "vendor.h5"
    model.save(h5)
    r = edgekit.convert(h5, d / "vendor-int8.tflite", recipe="int8", calibration=digits.x_calib, quiet=True)
    ev = d / "unlabeled.npy"
    np.save(ev, digits.x_test)
    return r.output, h5, ev
