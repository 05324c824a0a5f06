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
