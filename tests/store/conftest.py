"""Fixtures for the store tests: real digits models (good fp32, int8, dynamic) and copies safe to change.
The broken model (shuffled labels), the key pairs, the real sshd and the `edgekit` CLI runner are
tests/conftest.py's (the fleet tests use them too).

The probe's verdict cache goes to a per-session folder, never the user's ~/.cache.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("EDGEKIT_CACHE_DIR", tempfile.mkdtemp(prefix="edgekit-test-cache-"))


@pytest.fixture(scope="session")
def good(digits_models) -> Path:
    return digits_models("fp32")


@pytest.fixture(scope="session")
def good_int8(digits_models) -> Path:
    return digits_models("int8")


@pytest.fixture(scope="session")
def good_dynamic(digits_models) -> Path:
    return digits_models("dynamic")


@pytest.fixture()
def copy_model(tmp_path):
    """copy_model(path, name) -> a copy of the model and its manifest under tmp_path (safe to sign or damage)."""
    import shutil

    from edgekit.manifest import manifest_path_for

    def make(src: Path, name: str = "model") -> Path:
        dest = tmp_path / "models" / f"{name}.tflite"
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(src, dest)
        shutil.copyfile(manifest_path_for(src), manifest_path_for(dest))
        return dest

    return make
