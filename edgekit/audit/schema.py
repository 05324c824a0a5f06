"""The audit's JSON document, schema ``edgekit.audit/1``: stable keys, one entry per check.

Top level: ``schema``, ``created``, ``verdict`` {passed, failed: [check names], gating: int},
``checks`` (list, see ``check``), ``model``, ``source``, ``reference`` (how accuracy was
scored), the sections ``accuracy``, ``robustness``, ``adversarial``, ``classes``, ``guard``,
``backdoor``, ``data``, ``governance``, and ``profile``, ``timings_s`` (and ``blackbox``, ``groups``:
per group of the eval data, accuracy with its Wilson 95% interval, agreement, guard FPR, gap). A section the audit
could not run for this model (e.g. image corruptions on a vector input) is present with
``{"skipped": "<why>"}``.

A check: ``name`` (dotted, stable: "guard.detection.noise"), ``section``, ``passed`` (bool),
``value`` (the figure), ``threshold``, ``op`` ("<=" or ">="), ``unit``, ``gate`` (False: shown
and recorded, but not part of the verdict: evidence about the test itself), ``note``.

Example:
    >>> c = check("classes.worst_drop", "classes", 7.5, 5.0, "<=", "points")
    >>> c["passed"], c["gate"]
    (False, True)
    >>> verdict([c])["failed"]
    ['classes.worst_drop']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import DataError

SCHEMA = "edgekit.audit/1"
SECTIONS = ("accuracy", "robustness", "adversarial", "classes", "guard", "backdoor", "data", "governance")
CHECK_KEYS = ("name", "section", "passed", "value", "threshold", "op", "unit", "gate", "note")


def check(name: str, section: str, value: float | None, threshold: float, op: str, unit: str, *,
          gate: bool = True, note: str = "") -> dict[str, Any]:
    """One check entry; ``value`` None (not measurable) fails, so nothing passes by omission."""
    if op not in ("<=", ">="):
        raise ValueError(op)
    passed = value is not None and (value <= threshold if op == "<=" else value >= threshold)
    return {"name": name, "section": section, "passed": bool(passed),
            "value": None if value is None else round(float(value), 4), "threshold": threshold, "op": op,
            "unit": unit, "gate": gate, "note": note}


def verdict(checks: list[dict[str, Any]]) -> dict[str, Any]:
    gating = [c for c in checks if c["gate"]]
    failed = [c["name"] for c in gating if not c["passed"]]
    return {"passed": not failed, "failed": failed, "gating": len(gating),
            "not_gating_failed": [c["name"] for c in checks if not c["gate"] and not c["passed"]]}


def validate(doc: dict[str, Any], where: str = "audit report") -> dict[str, Any]:
    """Refuse a document that is not edgekit.audit/1 or lacks a required part."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise DataError(f"{where}: not an {SCHEMA} document")
    for key in ("verdict", "checks", "model", "reference", *SECTIONS):
        if key not in doc:
            raise DataError(f"{where}: missing {key!r}")
    for c in doc["checks"]:
        if set(CHECK_KEYS) - set(c):
            raise DataError(f"{where}: check {c.get('name')!r} lacks {sorted(set(CHECK_KEYS) - set(c))}")
    return doc


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=1, allow_nan=False, default=_plain) + "\n"


def _plain(v):
    import numpy as np

    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(type(v).__name__)


def load(path: str | Path) -> dict[str, Any]:
    from ..fsutil import read_json

    return validate(read_json(Path(path), DataError, "audit report"), str(path))
