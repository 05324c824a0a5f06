"""Fixtures for the optimize tests: the planted digits model (edgekit/optimize/demo.py) and its data."""

from __future__ import annotations

from pathlib import Path

import pytest
from edgekit.optimize.demo import build_planted


@pytest.fixture(scope="session")
def planted(tmp_path_factory, digits, digits_npz) -> dict[str, Path]:
    """{"source": planted.keras, "calib", "eval", "train"}; the float model's predictions are unchanged."""
    m = build_planted(digits)
    path = tmp_path_factory.mktemp("planted") / "planted.keras"
    m.save(path)
    return {"source": path, **digits_npz}
