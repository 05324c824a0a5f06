"""Fixtures for the runtime tests: the shared converted digits models, plus two tiny real models
built with TensorFlow whose failures are real (an invoke error, a NaN output).

The probe's verdict cache goes to a per-session folder, never the user's ~/.cache.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import prebuilt_models  # tests/ is on sys.path (rootdir conftest, prepend import mode)
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


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    """Four-value models without manifests (built by tests/prebuilt_models.py build_tiny, or prebuilt):

    - ``batch_one``: x * 2 through a reshape to [1, 4]; its input batch is dynamic, so resizing to
      batch 2 is accepted and then allocate_tensors fails;
    - ``gather``: gathers from a 4-entry table at int(x); indices out of 0..3 fail in invoke
      (TFLite's GATHER checks bounds at run time), zeros run fine, so the probe passes it;
    - ``safe_gather``: the same with indices clipped into range (the fallback for ``gather``);
    - ``log``: log(x), NaN for negative input (an invalid output);
    - ``log_abs``: log(|x| + 1), finite everywhere (the fallback for ``log``).
    """
    out = tmp_path_factory.mktemp("tiny")
    prebuilt = prebuilt_models.folder()
    if prebuilt:
        return {name: prebuilt_models.copy_model(prebuilt / "tiny" / f"{name}.tflite", out)
                for name in prebuilt_models.TINY}
    return prebuilt_models.build_tiny(out)


@pytest.fixture(scope="session")
def ood_sets(digits) -> dict[str, np.ndarray]:
    """Out-of-distribution inputs shaped like digits (the demo's): noise, blank, inverted digits."""
    from edgekit.runtime.demo import ood_inputs

    sets = ood_inputs(digits.x_test, seed=123)
    return {"noise": sets["uniform noise"], "blank": sets["blank (black, white)"], "inverted": sets["inverted digits"]}


# ---- a real two-input, two-output model ---------------------------------------------------------
@pytest.fixture(scope="session")
def multi(two_io, two_io_models) -> dict:
    """The shared two-input (``image`` 8x8x1, ``features`` 4 quadrant means), two-output (``scores``
    softmax over 10, ``value`` regression) model converted by edgekit.convert to int8 (int8 in and
    out) and fp32, with its eval data by input name. TensorFlow orders the interpreter's inputs by
    name (features, image), so every mapping in the runtime is by name.
    """
    ev = np.load(two_io["eval"])
    return {"int8": two_io_models("int8"), "fp32": two_io_models("fp32"),
            "eval": {"image": ev["image"], "features": ev["features"], "y": ev["y"]}}
