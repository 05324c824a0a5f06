"""Fixtures for the runtime tests: the shared converted digits models, plus two tiny real models
built with TensorFlow whose failures are real (an invoke error, a NaN output).

The probe's verdict cache goes to a per-session folder, never the user's ~/.cache.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ["EDGEKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="edgekit-test-cache-")


@pytest.fixture(scope="session")
def int8_path(digits_models) -> Path:
    return digits_models("int8")


@pytest.fixture(scope="session")
def fp32_path(digits_models) -> Path:
    return digits_models("fp32")


@pytest.fixture(scope="session")
def guarded(int8_path, fp32_path):
    """The int8 digits model behind the default policy, with the fp32 file as fallback."""
    from edgekit.runtime import EdgeModel

    with EdgeModel.load(int8_path, fallback=fp32_path) as model:
        yield model


def _convert_fn(fn, spec, path: Path) -> Path:
    import tensorflow as tf

    concrete = tf.function(fn, input_signature=[spec]).get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    path.write_bytes(conv.convert())
    return path


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Four-value models without manifests:

    - ``gather``: gathers from a 4-entry table at int(x); indices out of 0..3 fail in invoke
      (TFLite's GATHER checks bounds at run time), zeros run fine, so the probe passes it;
    - ``safe_gather``: the same with indices clipped into range (the fallback for ``gather``);
    - ``log``: log(x), NaN for negative input (an invalid output);
    - ``log_abs``: log(|x| + 1), finite everywhere (the fallback for ``log``).
    """
    import tensorflow as tf

    out = tmp_path_factory.mktemp("tiny")
    spec = tf.TensorSpec([1, 4], tf.float32)
    table = tf.constant([10.0, 20.0, 30.0, 40.0])

    def gather(x):
        return tf.gather(table, tf.cast(x, tf.int32))

    def safe_gather(x):
        return tf.gather(table, tf.clip_by_value(tf.cast(x, tf.int32), 0, 3))

    def log(x):
        return tf.math.log(x)

    def log_abs(x):
        return tf.math.log(tf.abs(x) + 1.0)

    return {f.__name__: _convert_fn(f, spec, out / f"{f.__name__}.tflite") for f in (gather, safe_gather, log, log_abs)}


@pytest.fixture(scope="session")
def ood_sets(digits) -> dict[str, np.ndarray]:
    """Out-of-distribution inputs shaped like digits (the demo's): noise, blank, inverted digits."""
    from edgekit.runtime.demo import ood_inputs

    sets = ood_inputs(digits.x_test, seed=123)
    return {"noise": sets["uniform noise"], "blank": sets["blank (black, white)"], "inverted": sets["inverted digits"]}
