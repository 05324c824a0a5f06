"""Helpers for the optimize tests: the planted model and an in-process CLI call.

The model is a digits CNN trained normally, then rewritten so the float function stays
the same but one Dense layer ("sensitive") cannot be quantized per channel: one unit of
the layer before it is scaled down by 100 and that unit's outgoing weights in
"sensitive" are scaled up by 100 (relu(a*z)/a = relu(z) for a > 0). Each output
channel's int8 weight scale is then set by that one large weight, and the other
weights round to a few levels: plain int8 loses about 3 points of top-1, and keeping
"sensitive" in float gives them back.
"""

from __future__ import annotations

import numpy as np

FACTOR = 100.0
PLANTED = "sensitive"


def build_planted(digits, seed: int = 0):
    from edgekit.conversion.tf import import_keras

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
    m.fit(digits.x_train, digits.y_train, epochs=8, batch_size=32, verbose=0)
    wh, bh = m.get_layer("hidden").get_weights()
    w, b = m.get_layer(PLANTED).get_weights()
    j = int(np.argmax(np.abs(w).sum(axis=1)))  # the unit "sensitive" leans on most
    wh[:, j] /= FACTOR
    bh[j] /= FACTOR
    w[j, :] *= FACTOR
    m.get_layer("hidden").set_weights([wh, bh])
    m.get_layer(PLANTED).set_weights([w, b])
    return m


def cli(*args: str) -> tuple[int, str, str]:
    """Run the edgekit CLI in-process; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from edgekit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()
