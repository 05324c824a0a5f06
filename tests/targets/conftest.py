"""Fixture models with planted problems for edgekit check, built with real TensorFlow once per session.

- static_int8: the trained digits CNN rebuilt with a fixed batch of 1 (so no SHAPE/PACK ops and
  no dynamic shapes), converted with edgekit's int8 recipe: the clean model.
- custom_op_model: digits int8 with its SOFTMAX turned into a CUSTOM op with a made-up code
  (edited with ai_edge_litert.tools.flatbuffer_utils, as a converter plugin would leave it).
- big_dense_model: a Dense model with about 650 KB of fp32 weights, fixed batch: too big for the
  microcontroller's 512 KB flash budget.
The float model is conftest's digits_models("fp32"); the too-new op version is
digits_models("dynamic") (TF 2.21 writes FULLY_CONNECTED v12 for per-channel dynamic range).
"""

from __future__ import annotations

from pathlib import Path

import pytest

MADE_UP_OP = "EdgekitMadeUpOp"


@pytest.fixture(scope="session")
def static_int8(tmp_path_factory, digits_keras, digits) -> Path:
    import edgekit
    from edgekit.conversion.tf import import_keras

    keras = import_keras()
    trained = keras.models.load_model(digits_keras)
    layers = [keras.Input((8, 8, 1), batch_size=1, name="image"),
              keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
              keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
              keras.layers.MaxPooling2D(2), keras.layers.Flatten(),
              keras.layers.Dense(128, activation="relu"),
              keras.layers.Dense(10, activation="softmax", name="probs")]
    model = keras.Sequential(layers, name="digits_cnn_b1")
    model.set_weights(trained.get_weights())
    d = tmp_path_factory.mktemp("static")
    model.save(d / "digits-b1.keras")
    return edgekit.convert(d / "digits-b1.keras", d / "digits-b1-int8.tflite", recipe="int8",
                           calibration=digits.x_calib, labels=digits.labels, quiet=True).output


def softmax_as_custom_op(src: Path, code: str, out: Path) -> Path:
    """Rewrite the model's SOFTMAX as a CUSTOM op named ``code`` (flatbuffer edit, no TensorFlow)."""
    from ai_edge_litert import schema_py_generated as s
    from ai_edge_litert.tools import flatbuffer_utils as fu

    model = fu.read_model(str(src))
    codes = model.operatorCodes
    (idx,) = [i for i, c in enumerate(codes) if max(c.builtinCode, c.deprecatedBuiltinCode) == s.BuiltinOperator.SOFTMAX]
    codes[idx].builtinCode = codes[idx].deprecatedBuiltinCode = s.BuiltinOperator.CUSTOM
    codes[idx].customCode = code
    for op in model.subgraphs[0].operators:
        if op.opcodeIndex == idx:
            op.builtinOptionsType, op.builtinOptions = 0, None
    fu.write_model(model, str(out))
    return out


@pytest.fixture(scope="session")
def custom_op_model(tmp_path_factory, digits_models) -> Path:
    return softmax_as_custom_op(digits_models("int8"), MADE_UP_OP,
                                tmp_path_factory.mktemp("custom") / "digits-custom-op.tflite")


@pytest.fixture(scope="session")
def with_custom_op(tmp_path_factory, digits_models):
    """with_custom_op(code) -> digits int8 with its SOFTMAX renamed to the custom op ``code``."""
    d = tmp_path_factory.mktemp("customs")
    return lambda code: softmax_as_custom_op(digits_models("int8"), code, d / f"digits-{code}.tflite")


@pytest.fixture(scope="session")
def flex_op_model(tmp_path_factory, digits_models) -> Path:
    """A select-TF op as the converter writes one: a custom code starting with "Flex"."""
    return softmax_as_custom_op(digits_models("int8"), "FlexSoftmax",
                                tmp_path_factory.mktemp("flex") / "digits-flex-op.tflite")


@pytest.fixture(scope="session")
def big_dense_model(tmp_path_factory) -> Path:
    import edgekit
    from edgekit.conversion.tf import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,), batch_size=1, name="features"),
                              keras.layers.Dense(1280, activation="relu"), keras.layers.Dense(64)], name="big_dense")
    d = tmp_path_factory.mktemp("big")
    model.save(d / "big.keras")
    return edgekit.convert(d / "big.keras", d / "big-fp32.tflite", recipe="fp32", quiet=True).output
