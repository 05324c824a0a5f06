"""``edgekit audit``: a deployment safety report for a converted model and its guard.

Robustness to corruptions, adversarial transfer from the float source to the converted
file, class-level regressions, the guard's out-of-distribution detection (input- and
output-side signals, ROC AUC, suggested thresholds), a planted-trigger probe, data checks
and a governance record mapped to NIST AI RMF MEASURE 2. TensorFlow (for the source
model and its gradients) is imported only when an audit runs.

Example:
    >>> from edgekit.audit import run_audit                                          # doctest: +SKIP
    >>> doc = run_audit("digits-int8.tflite", "digits.keras", "eval.npz")           # doctest: +SKIP
    >>> doc["verdict"]["passed"]                                                     # doctest: +SKIP
    True

See docs/audit.md.
"""

from importlib import import_module

_EXPORTS = {"run_audit": "run", "write_report": "report_html", "AuditThresholds": "thresholds"}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = sorted(_EXPORTS)
