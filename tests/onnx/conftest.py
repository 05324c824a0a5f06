"""ONNX tests (issue 16): onnxruntime and onnx are the ``onnx`` extra, which the dev extra installs: a missing
one fails these tests at collection instead of skipping them."""

from __future__ import annotations

import numpy as np
import pytest

import onnx  # noqa: F401
import onnxruntime  # noqa: F401


@pytest.fixture(scope="session")
def digits_onnx(digits_keras, digits, tmp_path_factory):
    """The suite's digits CNN converted to .onnx by edgekit (fp32), with its manifest (calibration stats)."""
    from edgekit.conversion.pipeline import convert

    out = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    convert(digits_keras, out, recipe="fp32", calibration=digits.x_calib,
            eval_data=(digits.x_test, digits.y_test), quiet=True)
    return out


@pytest.fixture(scope="session")
def noise(digits) -> np.ndarray:
    from edgekit.runtime.demo import ood_inputs

    return ood_inputs(digits.x_test, seed=123)["uniform noise"]
