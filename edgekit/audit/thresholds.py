"""The audit's pass/fail thresholds (defaults, a target profile's ``[audit]`` table, flags) and
``--write-threshold``: storing the suggested guard thresholds in the model's manifest.

Example:
    >>> t = AuditThresholds.resolve(None, {"max_class_drop_points": 3.0})
    >>> t.max_class_drop_points, t.target_fpr
    (3.0, 0.01)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError


@dataclass(frozen=True)
class AuditThresholds:
    """Every threshold a check compares against; the report prints each next to its figure."""

    max_accuracy_drop_points: float = 2.0  # clean top-1, source minus converted
    max_class_drop_points: float = 5.0  # the worst single class
    max_group_gap_points: float = 5.0  # a group of the eval data behind the other samples (--groups)
    max_robustness_gap_points: float = 10.0  # source minus converted, at any perturbation and strength
    max_adversarial_gap_points: float = 10.0  # source under attack minus converted under the same inputs
    min_attack_drop_points: float = 30.0  # the strongest attack must hurt the source this much (or it proves little)
    min_ood_detection: float = 0.95  # share of each OOD set the guard flags
    max_clean_fpr: float = 0.02  # share of clean eval samples the guard flags
    target_fpr: float = 0.01  # for the suggested thresholds
    max_leakage_share: float = 0.01  # eval samples duplicated in calibration/train data
    backdoor_min_success: float = 0.5
    backdoor_min_concentration: float = 0.8

    @classmethod
    def resolve(cls, target: str | Path | None, flags: dict[str, Any] | None = None) -> "AuditThresholds":
        """Defaults, then the target profile's optional ``[audit]`` table, then flags (None = not given)."""
        values: dict[str, Any] = {}
        if target is not None:
            values.update(_profile_table(target))
        values.update({k: v for k, v in (flags or {}).items() if v is not None})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise UsageError(f"unknown audit threshold(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(sorted(names))}")
        for k, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise UsageError(f"audit threshold {k}={v!r} must be a non-negative number")
        if not 0 < float(values.get("target_fpr", cls.target_fpr)) < 1:
            raise UsageError(f"--target-fpr {values['target_fpr']} must be between 0 and 1 (0.01 is 1%)")
        return cls(**{k: float(v) for k, v in values.items()})


def _profile_table(target: str | Path) -> dict[str, Any]:
    """The ``[audit]`` table of a device profile ({} when it has none); the profile is fully checked."""
    from ..devices import load_profile

    return dict(load_profile(target).audit or {})


def write_guard_thresholds(model_path: str | Path, guard: dict[str, Any]) -> Path:
    """Store the suggested guard thresholds in the model's manifest (its ``guard`` section); returns its path.

    ``guard``: ood_threshold, output_signal, output_threshold, target_fpr, measured_fpr, set_by.
    The manifest is validated before it is written, and written atomically.
    """
    from ..manifest import GuardThresholds, Manifest

    m = Manifest.load(model_path)
    return m.replace(guard=GuardThresholds(**guard)).save(model_path)
