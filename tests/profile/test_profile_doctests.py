"""The examples in edgekit.profile's docstrings run (the ones that need a model file are marked SKIP)."""

import doctest
import importlib
import pkgutil

import pytest

import edgekit.profile

MODULES = [m.name for m in pkgutil.iter_modules(edgekit.profile.__path__, "edgekit.profile.")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
