"""``edgekit profile``: trustworthy latency and memory on the device, budgets, reports, remote runs.

Measurements run in a fresh child process (child.py) so nothing earlier pollutes
them; results are "edgekit.profile/1" JSON documents (schema.py). No TensorFlow.

Example:
    >>> from edgekit.profile import profile_model, check_budget          # doctest: +SKIP
    >>> doc = profile_model("digits-int8.tflite", threads="1,2")          # doctest: +SKIP
    >>> check_budget(doc, target="raspberry-pi-4")["passed"]              # doctest: +SKIP
    True
"""

from __future__ import annotations

from importlib import import_module

# Lazy, so `import edgekit.profile` (and the CLI's --help) stays cheap.
_EXPORTS = {
    "profile_model": "profiler",
    "check_budget": "budgets",
    "compare": "comparison",
    "load_result": "schema",
    "save_result": "schema",
    "write_report": "report",
    "summary": "render",
    "profile_ssh": "remote_ssh",
    "profile_adb": "remote_adb",
    "profile_demo": "demo",
}
_RENAMED = {"load_result": "load", "save_result": "save", "profile_ssh": "profile_host"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), _RENAMED.get(name, name))


__all__ = sorted(_EXPORTS)
