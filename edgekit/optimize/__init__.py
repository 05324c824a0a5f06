"""``edgekit optimize``: search conversion recipes for the best model that meets accuracy, size and latency budgets.

Modules: space (the candidates), trials (one conversion; latency), executor (local
processes or Ray), journal (resume), pareto (budgets, front, the selection rule),
render (the table), search (the whole run). TensorFlow is imported only in the workers.

Example:
    >>> from edgekit.optimize import optimize, Budgets                       # doctest: +SKIP
    >>> res = optimize("m.keras", "m.tflite", calibration="calib.npz", eval_data="eval.npz",
    ...                budgets=Budgets(max_drop_points=1.0, max_size_kb=100))  # doctest: +SKIP
"""

from .pareto import Budgets, select
from .search import OptimizeResult, optimize
from .trials import LatencySettings

__all__ = ["Budgets", "LatencySettings", "OptimizeResult", "optimize", "select"]
