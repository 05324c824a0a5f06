"""A digits CNN with one planted quantization-sensitive layer: plain int8 loses points, the debugger finds why.

The model is trained normally, then rewritten so its float function stays the same
but one Dense layer (``sensitive``) cannot be quantized per channel: one unit of the
layer before it is scaled down by ``factor`` and that unit's outgoing weights in
``sensitive`` are scaled up by ``factor`` (relu(a*z)/a = relu(z) for a > 0). Each of
``sensitive``'s output channels then gets an int8 weight scale set by that one large
weight, and its other weights round to a few levels. Used by the tests, the docs'
figures and ``bench/bench_optimize.py --planted``.

Example:
    >>> from edgekit.digits import load_split                    # doctest: +SKIP
    >>> model = build_planted(load_split(seed=0))                 # doctest: +SKIP
    >>> model.save("planted.keras")                               # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

PLANTED = "sensitive"
FACTOR = 100.0


def build_planted(split, *, factor: float = FACTOR, epochs: int = 8, seed: int = 0):
    """Train a small digits CNN on ``split`` (edgekit.digits.load_split) and plant the sensitive layer."""
    from ..conversion.tf import captured, import_keras

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    m = keras.Sequential([
        keras.Input((8, 8, 1), name="image"),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu", name="hidden"),
        keras.layers.Dense(32, activation="relu", name=PLANTED),
        keras.layers.Dense(10, activation="softmax", name="probs"),
    ], name="planted")
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with captured():
        m.fit(split.x_train, split.y_train, epochs=epochs, batch_size=32, verbose=0)
    wh, bh = m.get_layer("hidden").get_weights()
    w, b = m.get_layer(PLANTED).get_weights()
    j = int(np.argmax(np.abs(w).sum(axis=1)))  # the unit "sensitive" leans on most
    wh[:, j] /= factor
    bh[j] /= factor
    w[j, :] *= factor
    m.get_layer("hidden").set_weights([wh, bh])
    m.get_layer(PLANTED).set_weights([w, b])
    return m
