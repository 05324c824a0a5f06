"""``edgekit release``: one signed folder of evidence for one model and one target, with a CycloneDX ML-BOM.

Building imports the profiler and, for the audit, TensorFlow (lazily); checking a bundle
(``evidence``, used by the store) imports neither.

Example:
    >>> from edgekit.release import build_release                                       # doctest: +SKIP
    >>> build_release("digits-int8.tflite", "raspberry-pi-4", "rel/", key="key.pem")["passed"]   # doctest: +SKIP
    True
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {"build_release": "bundle", "enforce": "bundle", "check_bundle": "evidence", "is_bundle": "evidence",
            "build_bom": "bom"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = sorted(_EXPORTS)
