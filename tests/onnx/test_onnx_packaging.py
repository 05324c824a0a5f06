"""The ``onnx`` extra: ONNX Runtime where it has wheels (Python 3.11+, x86_64 and aarch64), nothing elsewhere,
so `pip install edgekit[onnx]` never fails on armv7l; the runtime-only install stays without it."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.requirements import Requirement

from edgekit.tomldata import tomllib

PROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]


@pytest.mark.parametrize("machine, python, wanted", [
    ("x86_64", "3.11", True), ("aarch64", "3.12", True), ("armv7l", "3.11", False), ("x86_64", "3.10", False),
])
def test_onnx_extra_only_where_wheels_exist(machine, python, wanted):
    env = {"platform_machine": machine, "python_version": python, "extra": "onnx"}
    reqs = [Requirement(r) for r in PROJECT["optional-dependencies"]["onnx"]]
    assert sorted(r.name for r in reqs) == ["onnx", "onnxruntime", "sympy"]  # sympy: quant_pre_process
    assert all(r.marker.evaluate(env) == wanted for r in reqs)


def test_dev_has_onnx_and_tf2onnx_and_the_runtime_install_has_neither():
    dev = [Requirement(r).name for r in PROJECT["optional-dependencies"]["dev"]]
    assert "edgekit" in dev and "tf2onnx" in dev
    assert "edgekit[onnx]" in PROJECT["optional-dependencies"]["dev"]
    base = {Requirement(r).name for r in PROJECT["dependencies"]}
    assert not base & {"onnx", "onnxruntime", "tf2onnx"}
