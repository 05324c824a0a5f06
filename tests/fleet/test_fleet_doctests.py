"""The examples in edgekit.fleet's docstrings, and in the store modules it reads through, run."""

import doctest
import importlib
import pkgutil

import pytest

import edgekit.fleet

MODULES = [m.name for m in pkgutil.iter_modules(edgekit.fleet.__path__, "edgekit.fleet.")] + [
    "edgekit.store.health", "edgekit.store.incident_pull"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
