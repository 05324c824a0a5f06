"""The test models and data, built once with TensorFlow so runtime-only environments can test without it.

The main test venv (with TensorFlow and scikit-learn) builds them; the runtime-only venvs
of ``./dev test`` (one per Python version, no TensorFlow) read them through
``EDGEKIT_TEST_MODELS=FOLDER``, so the runtime and unit tests run there unchanged. The
fixtures in tests/conftest.py and tests/runtime/conftest.py use the same builders here,
so a prebuilt model is exactly what a fixture would have made.

    python tests/prebuilt_models.py              # build (or reuse) and print the folder
    python tests/prebuilt_models.py --where      # only print where it would be

The folder is keyed by a hash of everything that shapes the files (edgekit's sources,
the recipes, this file, pyproject.toml): a code change builds a new one, an unchanged tree
reuses it. It is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ENV = "EDGEKIT_TEST_MODELS"
REPO = Path(__file__).resolve().parents[1]
RECIPES = ("fp32", "int8")  # what the runtime tests ask digits_models() for
TINY = ("gather", "safe_gather", "log", "log_abs", "batch_one")
TWO_IO_RECIPES = ("fp32", "int8")  # what the runtime tests ask two_io_models() for
DIGITS_FIELDS = ("x_train", "y_train", "x_calib", "x_test", "y_test")


def folder() -> Path | None:
    """The prebuilt folder named by $EDGEKIT_TEST_MODELS, or None (build in the test session)."""
    value = os.environ.get(ENV)
    if not value:
        return None
    path = Path(value)
    if not (path / "digits.npz").is_file():
        raise RuntimeError(f"{ENV}={value}: no digits.npz there; build it with python tests/prebuilt_models.py")
    return path


# ---- builders (used by the fixtures and by build()) ----

def save_digits(split, path: Path) -> None:
    np.savez(path, labels=np.array(split.labels), **{k: getattr(split, k) for k in DIGITS_FIELDS})


def load_digits(path: Path):
    from edgekit.digits import DigitsSplit

    with np.load(path) as f:
        return DigitsSplit(**{k: f[k] for k in DIGITS_FIELDS}, labels=[str(v) for v in f["labels"]])


def convert_digits(keras_path: Path, split, out: Path, recipe: str) -> Path:
    """digits-<recipe>.tflite (and its manifest) in ``out``, converted by edgekit."""
    import edgekit

    result = edgekit.convert(keras_path, out / f"digits-{recipe}.tflite", recipe=recipe,
                             calibration=split.x_calib, eval_data=(split.x_test, split.y_test),
                             labels=split.labels, preprocessing="digits", quiet=True)
    return result.output


def build_tiny(out: Path) -> dict[str, Path]:
    """Four-value models without manifests (see tests/runtime/conftest.py tiny_models)."""
    import tensorflow as tf

    spec = tf.TensorSpec([1, 4], tf.float32)
    dynamic = tf.TensorSpec([None, 4], tf.float32)  # batch_one: a dynamic batch input ...
    table = tf.constant([10.0, 20.0, 30.0, 40.0])
    fns = {
        "gather": lambda x: tf.gather(table, tf.cast(x, tf.int32)),
        "safe_gather": lambda x: tf.gather(table, tf.clip_by_value(tf.cast(x, tf.int32), 0, 3)),
        "log": lambda x: tf.math.log(x),
        "log_abs": lambda x: tf.math.log(tf.abs(x) + 1.0),
        "batch_one": lambda x: tf.reshape(x, [1, 4]) * 2.0,  # ... behind a graph fixed to batch 1
    }
    paths = {}
    for name in TINY:
        sig = dynamic if name == "batch_one" else spec
        concrete = tf.function(fns[name], input_signature=[sig]).get_concrete_function()
        path = out / f"{name}.tflite"
        path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())
        paths[name] = path
    return paths


def quadrant_means(x: np.ndarray) -> np.ndarray:
    """A second, real input for the two-input model: the mean of each 4x4 quadrant of a digit."""
    return np.stack([x[:, :4, :4].mean((1, 2, 3)), x[:, :4, 4:].mean((1, 2, 3)),
                     x[:, 4:, :4].mean((1, 2, 3)), x[:, 4:, 4:].mean((1, 2, 3))], axis=1).astype(np.float32)


def build_two_io(split, d: Path) -> dict[str, Path]:
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
    value = split.y_train.astype(np.float32)[:, None] / 9.0
    model.fit({"image": split.x_train, "features": quadrant_means(split.x_train)},
              {"scores": split.y_train, "value": value}, epochs=6, batch_size=32, verbose=0)
    d.mkdir(parents=True, exist_ok=True)
    model.save(d / "two_io.keras")
    np.savez(d / "calib.npz", image=split.x_calib, features=quadrant_means(split.x_calib))
    np.savez(d / "eval.npz", image=split.x_test, features=quadrant_means(split.x_test), y=split.y_test,
             y_value=split.y_test.astype(np.float32)[:, None] / 9.0)
    return {"keras": d / "two_io.keras", "calib": d / "calib.npz", "eval": d / "eval.npz", "dir": d}


def convert_two_io(paths: dict[str, Path], recipe: str) -> Path:
    """two_io-<recipe>.tflite (and its manifest) next to the Keras model, converted by edgekit."""
    import edgekit

    return edgekit.convert(paths["keras"], paths["dir"] / f"two_io-{recipe}.tflite", recipe=recipe,
                           calibration=paths["calib"], eval_data=paths["eval"], quiet=True).output


def copy_model(src: Path, dest_dir: Path) -> Path:
    """A model and its manifest sidecar (if any) copied into ``dest_dir``."""
    from edgekit.manifest import manifest_path_for

    dest = dest_dir / src.name
    shutil.copyfile(src, dest)
    if manifest_path_for(src).exists():
        shutil.copyfile(manifest_path_for(src), manifest_path_for(dest))
    return dest


# ---- the cached folder ----

def cache_key() -> str:
    h = hashlib.sha256()
    files = sorted((REPO / "edgekit").rglob("*.py")) + sorted((REPO / "converters").glob("*.toml"))
    for p in files + [Path(__file__).resolve(), REPO / "pyproject.toml"]:
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgekit" / "test-models"


def build(dest: Path) -> Path:
    """Everything the runtime-only tests read, in ``dest`` (atomically: a temp folder renamed)."""
    from edgekit.digits import load_split, train_cnn

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".part-", dir=dest.parent))
    split = load_split(seed=0)
    save_digits(split, tmp / "digits.npz")
    keras_path = tmp / "digits.keras"
    train_cnn(split, epochs=8).save(keras_path)
    for recipe in RECIPES:
        convert_digits(keras_path, split, tmp, recipe)
    keras_path.unlink()
    (tmp / "tiny").mkdir()
    build_tiny(tmp / "tiny")
    two = build_two_io(split, tmp / "two_io")
    for recipe in TWO_IO_RECIPES:
        convert_two_io(two, recipe)
    two["keras"].unlink()
    try:
        tmp.rename(dest)
    except OSError:  # another build finished first: keep that one
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def main(argv: list[str]) -> int:
    dest = cache_root() / cache_key()
    if "--where" not in argv and not (dest / "digits.npz").is_file():
        import contextlib

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        print(f"building the test models into {dest} (TensorFlow, about a minute)", file=sys.stderr)
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the folder alone (the converter talks)
            build(dest)
    print(dest)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))  # run as a script from a checkout: import this edgekit
    sys.exit(main(sys.argv[1:]))
