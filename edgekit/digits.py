"""scikit-learn's bundled digits (1,797 real 8x8 handwritten digits): the offline demo and test data.

Pixels are scaled from 0..16 to 0..1 and shaped (N, 8, 8, 1) float32, the way an
8x8 grayscale image scaled by 1/255 would look, so image files work too.

Example:
    >>> d = load_split(seed=0)
    >>> d.x_train.shape[1:], d.x_train.dtype.name, len(d.labels)
    ((8, 8, 1), 'float32', 10)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import MissingDependencyError
from .manifest import Preprocessing

PREPROCESSING = Preprocessing(height=8, width=8, channels=1, scale=1.0 / 255.0, offset=0.0)


@dataclass
class DigitsSplit:
    x_train: np.ndarray
    y_train: np.ndarray
    x_calib: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list[str]


def load_split(seed: int = 0, test_share: float = 0.25, calib_size: int = 300) -> DigitsSplit:
    """Stratified train/test split; calibration samples come from the training part only."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise MissingDependencyError("the digits demo needs scikit-learn; pip install 'edgekit[demo]'") from None
    data = load_digits()
    x = (data.images.astype(np.float32) / 16.0)[..., None]
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test_idx = []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        test_idx.extend(rng.choice(idx, size=int(round(len(idx) * test_share)), replace=False))
    test_mask = np.zeros(len(y), bool)
    test_mask[test_idx] = True
    train = np.flatnonzero(~test_mask)
    rng.shuffle(train)
    calib = train[:calib_size]
    return DigitsSplit(
        x_train=x[train], y_train=y[train], x_calib=x[calib],
        x_test=x[test_mask], y_test=y[test_mask], labels=[str(i) for i in range(10)],
    )


def build_cnn(seed: int = 0):
    """A small Conv2D + Dense classifier for 8x8x1 input (Keras 3; imports TensorFlow)."""
    from .conversion.tf import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ],
        name="digits_cnn",
    )


def train_cnn(split: DigitsSplit, epochs: int = 12, seed: int = 0):
    """Train build_cnn() on the split's training part; returns the Keras model."""
    model = build_cnn(seed)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(split.x_train, split.y_train, epochs=epochs, batch_size=32, verbose=0)
    return model
