"""Interpreter discovery order and errors."""

import pytest

from edgekit.engine.tflite import BACKEND_NAMES, available_backends, get_backend
from edgekit.errors import MissingDependencyError, UsageError


def test_default_is_ai_edge_litert():
    assert BACKEND_NAMES[0] == "ai-edge-litert"
    be = get_backend()
    assert be.name == "ai-edge-litert" and be.version[0].isdigit()


@pytest.mark.full_env
def test_all_three_are_installed_in_the_dev_env():
    assert [b.name for b in available_backends()] == ["ai-edge-litert", "tflite-runtime", "tensorflow"]


def test_unknown_backend():
    with pytest.raises(UsageError, match="unknown interpreter 'onnx'"):
        get_backend("onnx")


def test_missing_backend_names_the_package(monkeypatch):
    import edgekit.engine.tflite as b

    monkeypatch.setattr(b, "_cache", {"tflite-runtime": None})
    with pytest.raises(MissingDependencyError, match="pip install tflite-runtime"):
        get_backend("tflite-runtime")
