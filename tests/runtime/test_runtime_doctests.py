"""The docstring examples of the runtime's model-free modules run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["edgekit.quant", "edgekit.runtime.coerce", "edgekit.runtime.output_score",
                                  "edgekit.runtime.monitor", "edgekit.runtime.incidents", "edgekit.runtime.policy",
                                  "edgekit.runtime.checks", "edgekit.runtime.inputs"])
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
