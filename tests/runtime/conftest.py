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

    - ``batch_one``: x * 2 through a reshape to [1, 4]; its input batch is dynamic, so resizing to
      batch 2 is accepted and then allocate_tensors fails;
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

    models = {f.__name__: _convert_fn(f, spec, out / f"{f.__name__}.tflite")
              for f in (gather, safe_gather, log, log_abs)}

    def batch_one(x):  # a graph fixed to batch 1 behind a dynamic batch input: allocate fails for others
        return tf.reshape(x, [1, 4]) * 2.0

    models["batch_one"] = _convert_fn(batch_one, tf.TensorSpec([None, 4], tf.float32), out / "batch_one.tflite")
    return models


@pytest.fixture(scope="session")
def ood_sets(digits) -> dict[str, np.ndarray]:
    """Out-of-distribution inputs shaped like digits (the demo's): noise, blank, inverted digits."""
    from edgekit.runtime.demo import ood_inputs

    sets = ood_inputs(digits.x_test, seed=123)
    return {"noise": sets["uniform noise"], "blank": sets["blank (black, white)"], "inverted": sets["inverted digits"]}


# ---- a real two-input, two-output model ---------------------------------------------------------
def quadrant_features(x: np.ndarray) -> np.ndarray:
    """Four pooled values of each 8x8 digit (the mean of each 4x4 quadrant): learnable from the image."""
    return np.stack([x[:, :4, :4].mean(axis=(1, 2, 3)), x[:, :4, 4:].mean(axis=(1, 2, 3)),
                     x[:, 4:, :4].mean(axis=(1, 2, 3)), x[:, 4:, 4:].mean(axis=(1, 2, 3))], axis=1).astype(np.float32)


def _two_io_manifest(path: Path, interp_specs, keras_model, calib: dict, evald: dict, labels, digits) -> None:
    """The manifest edgekit.convert would write: stats per input, accuracy per output (Keras order)."""
    import datetime as dt

    from edgekit.calibration_stats import compute_input_stats
    from edgekit.fsutil import sha256_bytes
    from edgekit.manifest import (Accuracy, Calibration, Manifest, ModelFile, OutputAccuracy, Preprocessing,
                                  Provenance)
    from edgekit.runtime.interpreter_pool import Runner

    data = path.read_bytes()
    ins, outs = interp_specs
    order = ["image", "features"]
    runner = Runner(data, label=str(path), probe=False)
    x = [evald[t.name] for t in runner.inputs]
    got = dict(zip([t.name for t in runner.outputs], runner.run(x)))
    want = keras_model.predict({k: evald[k] for k in order}, verbose=0)
    acc = []
    for name in ("scores", "value"):
        err = np.abs(got[name] - want[name])
        extra = {}
        if name == "scores":
            extra = dict(task="classification", agreement=float(np.mean(got[name].argmax(1) == want[name].argmax(1))),
                         top1_converted=float(np.mean(got[name].argmax(1) == evald["y"])))
        else:
            extra = dict(task="regression")
        acc.append(OutputAccuracy(name=name, max_abs_error=float(err.max()), mean_abs_error=float(err.mean()),
                                  **extra))
    m = Manifest(
        model=ModelFile(file=path.name, sha256=sha256_bytes(data), size_bytes=len(data)),
        inputs=tuple(sorted(ins, key=lambda t: order.index(t.name))),
        outputs=tuple(sorted(outs, key=lambda t: ["scores", "value"].index(t.name))),
        provenance=Provenance(created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")),
        task="classification", labels=tuple(labels),
        preprocessing={"image": Preprocessing(height=8, width=8, channels=1, scale=1 / 255)},
        calibration=Calibration(samples=len(calib["image"]), source="fixture",
                                inputs={k: compute_input_stats(calib[k]) for k in order}),
        accuracy=Accuracy(samples=len(evald["y"]), outputs=tuple(acc), labelled=True),
    )
    m.save(path)


@pytest.fixture(scope="session")
def two_io(tmp_path_factory, digits) -> dict:
    """A Keras functional model with inputs ``image`` (8x8x1) and ``features`` (4 quadrant means) and
    outputs ``scores`` (softmax over 10 digits) and ``value`` (the mean pixel), trained on digits;
    converted through ``model.export`` + ``from_saved_model`` to full int8 (int8 in and out) and fp32,
    each with a manifest. TensorFlow orders the interpreter's inputs by name (features, image):
    the opposite of the Keras and manifest order, so every mapping is by name.
    """
    import keras
    import tensorflow as tf

    from edgekit.conversion.tf import captured
    from edgekit.manifest import tensor_specs
    from edgekit.backends import make_interpreter

    out = tmp_path_factory.mktemp("two_io")
    keras.utils.set_random_seed(0)
    img = keras.Input((8, 8, 1), name="image")
    feat = keras.Input((4,), name="features")
    h = keras.layers.Flatten()(keras.layers.Conv2D(8, 3, activation="relu")(img))
    h = keras.layers.Concatenate()([h, keras.layers.Dense(8, activation="relu")(feat)])
    h = keras.layers.Dense(32, activation="relu")(h)
    model = keras.Model({"image": img, "features": feat},
                        {"scores": keras.layers.Dense(10, activation="softmax", name="scores")(h),
                         "value": keras.layers.Dense(1, name="value")(h)})
    model.compile(optimizer="adam", loss={"scores": "sparse_categorical_crossentropy", "value": "mse"})

    def split(x, y=None):
        d = {"image": x, "features": quadrant_features(x)}
        if y is not None:
            d["y"] = y
        return d

    train, calib, evald = split(digits.x_train, digits.y_train), split(digits.x_calib), split(digits.x_test, digits.y_test)
    model.fit({"image": train["image"], "features": train["features"]},
              {"scores": train["y"], "value": train["image"].mean(axis=(1, 2, 3))[:, None]},
              epochs=10, batch_size=32, verbose=0)
    saved = out / "saved"
    with captured():
        model.export(str(saved))
    paths = {}
    for kind in ("fp32", "int8"):
        conv = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        if kind == "int8":
            def rep():
                for i in range(len(calib["image"])):
                    yield {"image": calib["image"][i:i + 1], "features": calib["features"][i:i + 1]}

            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = rep
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        with captured():
            data = conv.convert()
        path = out / f"two-io-{kind}.tflite"
        path.write_bytes(data)
        specs = tensor_specs(make_interpreter(data))
        _two_io_manifest(path, specs, model, calib, evald, digits.labels, digits)
        paths[kind] = path
    return {"int8": paths["int8"], "fp32": paths["fp32"], "keras": model, "calib": calib, "eval": evald}
