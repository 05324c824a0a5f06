"""The device store: versioned models, atomic activation, canary promotion, automatic rollback, history.

numpy + an interpreter only (no TensorFlow): it runs on the device. See docs/store.md.

Example:
    >>> from edgekit.store import ModelStore
    >>> store = ModelStore("/var/lib/app/models", create=True)                       # doctest: +SKIP
    >>> store.deploy("digits-int8.tflite", canary={"calls": 200})["action"]           # doctest: +SKIP
    'staged'
    >>> from edgekit.store import serve
    >>> serve("/var/lib/app/models").predict(x).label                               # doctest: +SKIP
    '7'
"""

from .canary import Budgets, Decision, decide, resolve_budgets
from .store import ModelStore, Version

__all__ = ["Budgets", "Decision", "ModelStore", "RollbackRules", "ServedModel", "Version", "decide",
           "resolve_budgets", "serve"]


def __getattr__(name: str):
    # served.py pulls in the runtime (numpy, interpreter discovery): only when asked for
    if name in ("ServedModel", "RollbackRules", "serve"):
        from . import served

        return getattr(served, name)
    raise AttributeError(name)
