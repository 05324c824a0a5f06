"""Will this model run on that device? Checks a .tflite against a device profile, no TensorFlow.

Example:
    >>> from edgekit.targets import check_model
    >>> report = check_model("digits-int8.tflite", "raspberry-pi-4")   # doctest: +SKIP
    >>> report.compatible                                             # doctest: +SKIP
    True
"""

from .check import CheckReport, check_info, check_model
from .optables import OpTable, interpreter_table, load_table
from .rules import Finding

__all__ = ["CheckReport", "Finding", "OpTable", "check_info", "check_model", "interpreter_table", "load_table"]
