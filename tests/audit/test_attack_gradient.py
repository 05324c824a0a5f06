"""The white-box attacks' input gradient runs as one compiled graph per model (audit/attacks.py).

Eager backprop through a Conv2D also runs the filter's gradient kernel (Conv2DBackpropFilter), which an
input attack never uses; that oneDNN kernel is where a published 64x64 BatchNorm CNN's audit died with
SIGSEGV. These tests check, in TensorFlow's own profiler trace, that the kernel no longer runs, and that
the compiled gradient gives the same adversarial examples as the eager one.
"""

from __future__ import annotations

import glob

import numpy as np
import pytest
import tensorflow as tf

from edgekit.audit import attacks


@pytest.fixture(scope="module")
def bn_cnn():
    keras = tf.keras
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
                             keras.layers.ReLU(), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])


def _data():
    return np.random.default_rng(0).random((8, 16, 16, 1), dtype=np.float32), np.arange(8) % 3


def _kernels_run(fn, tmp_path) -> dict[str, int]:
    fn()  # traced and warm before the trace starts
    tf.profiler.experimental.start(str(tmp_path))
    try:
        fn()
    finally:
        tf.profiler.experimental.stop()
    blob = b"".join(open(f, "rb").read() for f in glob.glob(f"{tmp_path}/**/*.xplane.pb", recursive=True))
    return {k: blob.count(k.encode()) for k in ("Conv2DBackpropInput", "Conv2DBackpropFilter")}


def test_the_filter_gradient_kernel_never_runs_in_an_attack(bn_cnn, tmp_path):
    x, y = _data()
    seen = _kernels_run(lambda: attacks.pgd(bn_cnn, x, y, 0.1, (0.0, 1.0), steps=2), tmp_path / "compiled")
    assert seen["Conv2DBackpropInput"] > 0 and seen["Conv2DBackpropFilter"] == 0, seen
    tf.config.run_functions_eagerly(True)  # the control: the same attack, eager, runs the kernel
    try:
        eager = _kernels_run(lambda: attacks.fgsm(bn_cnn, x, y, 0.1, (0.0, 1.0)), tmp_path / "eager")
    finally:
        tf.config.run_functions_eagerly(False)
    assert eager["Conv2DBackpropFilter"] > 0, eager


def test_the_compiled_gradient_gives_the_eager_examples(bn_cnn):
    x, y = _data()
    compiled = attacks.fgsm(bn_cnn, x, y, 0.1, (0.0, 1.0))
    tf.config.run_functions_eagerly(True)
    try:
        eager = attacks.fgsm(bn_cnn, x, y, 0.1, (0.0, 1.0))
    finally:
        tf.config.run_functions_eagerly(False)
    assert np.abs(compiled - eager).max() <= 1e-6 and np.abs(compiled - x).max() > 0.09
