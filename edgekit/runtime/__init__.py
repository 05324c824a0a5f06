"""The guarded runtime: ``EdgeModel`` validates input, flags out-of-distribution data, falls back
safely and watches for drift. numpy + one interpreter package; never TensorFlow.

Example:
    >>> from edgekit.runtime import EdgeModel, Policy
    >>> model = EdgeModel.load("digits-int8.tflite", fallback="digits-fp32.tflite")   # doctest: +SKIP
    >>> model.predict("digit.png").top_k(3)                                            # doctest: +SKIP
    [('7', 0.97), ('1', 0.02), ('9', 0.004)]

See docs/runtime.md.
"""

from .checks import Check
from .model import EdgeModel
from .policy import KINDS, Policy
from .prediction import Prediction

__all__ = ["Check", "EdgeModel", "KINDS", "Policy", "Prediction"]
