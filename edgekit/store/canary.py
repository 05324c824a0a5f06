"""The canary decision: promote a candidate, reject it, or keep watching, from its figures and budgets.

A candidate runs in shadow beside the active version on live calls. Its figures: how many calls
were compared, how often its top-1 (or value) disagreed with the active version's, how often it
failed (invoke or output errors), how often its own guard flagged the input as out of distribution,
and its p95 latency. The canary ends after ``calls`` compared calls or ``minutes`` minutes,
whichever comes first; it is rejected earlier as soon as a budget can no longer be met.

Disagreement is the on-device proxy for accuracy (there are no labels on a device): a candidate
``d`` points less accurate than an active version of accuracy ``a`` disagrees with it on at least
``d - (1 - a)`` of the calls, so with a 98% accurate active version a candidate 10 points worse
disagrees on at least 8% and the default budget of 5% rejects it.

Example:
    >>> b = Budgets(max_disagreement=0.05)
    >>> decide({"compared": 200, "disagreed": 2, "errors": 0, "ood": 0, "latency_p95_ms": 1.0}, b, calls=200).verdict
    'promote'
    >>> decide({"compared": 40, "disagreed": 30, "errors": 0, "ood": 0}, b, calls=200).verdict
    'reject'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import UsageError

DEFAULT_CALLS = 200
MIN_COMPARED = 20  # a time-limited canary needs at least this many compared calls to judge


@dataclass(frozen=True)
class Budgets:
    """Limits a candidate must stay within (shares are 0..1; None: not checked)."""

    max_disagreement: float | None = 0.05
    max_error_rate: float | None = 0.01
    max_ood_rate: float | None = 0.10
    max_latency_ms: float | None = None  # on the candidate's p95 latency

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None and (v < 0 or (f.name != "max_latency_ms" and v > 1)):
                raise UsageError(f"canary budget {f.name}={v} is out of range (shares are 0..1, latency >= 0)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Budgets":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


def resolve_budgets(flags: dict[str, Any] | None = None, manifest: Any = None, profile: Any = None) -> Budgets:
    """Budgets from flags, else the manifest's ``canary`` section, else the device profile, else defaults.

    The manifest's ``canary`` section (CanaryBudgets) names the same fields; a device profile may
    carry them too (optional attributes), and its p95 latency budget applies to a candidate.
    """
    out = Budgets().to_dict()
    section = manifest.canary if manifest is not None else None
    for source in (profile, section):
        if source is None:
            continue
        for key in out:
            value = source.get(key) if isinstance(source, dict) else getattr(source, key, None)
            if value is None and key == "max_latency_ms" and source is profile:
                value = getattr(profile, "max_latency_ms", None)  # a profile's p95 budget applies to a candidate
            if value is not None:
                out[key] = value
    for key, value in (flags or {}).items():
        if value is not None:
            out[key] = value
    return Budgets.from_dict(out)


@dataclass
class Decision:
    verdict: str  # promote | reject | continue
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rates(figures: dict[str, Any]) -> dict[str, float | None]:
    n = figures.get("compared") or 0
    tried = n + (figures.get("errors") or 0)
    return {
        "disagreement": figures.get("disagreed", 0) / n if n else None,
        "error_rate": (figures.get("errors") or 0) / tried if tried else None,
        "ood_rate": (figures.get("ood") or 0) / n if n else None,
    }


def decide(figures: dict[str, Any], budgets: Budgets, *, calls: int | None = DEFAULT_CALLS,
           elapsed_s: float = 0.0, minutes: float | None = None) -> Decision:
    """Promote, reject or continue; see the module docstring. ``calls``: the planned compared calls."""
    figs = dict(figures, **rates(figures))
    n = figures.get("compared") or 0
    errors = figures.get("errors") or 0
    over = []
    # Hopeless already: more disagreements (errors, OOD) than the whole canary's budget allows.
    planned = calls or n
    for key, count, limit in (("disagreement", figures.get("disagreed", 0), budgets.max_disagreement),
                              ("error_rate", errors, budgets.max_error_rate),
                              ("ood_rate", figures.get("ood", 0), budgets.max_ood_rate)):
        if limit is not None and planned and count > limit * planned:
            over.append(f"{key} {count}/{planned} planned calls already over the budget {limit:g}")
    if over:
        return Decision("reject", over, figs)
    time_up = minutes is not None and elapsed_s >= minutes * 60 and n >= min(MIN_COMPARED, calls or MIN_COMPARED)
    if not ((calls is not None and n >= calls) or time_up):
        return Decision("continue", [], figs)
    reasons = []
    for key, limit in (("disagreement", budgets.max_disagreement), ("error_rate", budgets.max_error_rate),
                       ("ood_rate", budgets.max_ood_rate)):
        value = figs[key]
        if limit is not None and value is not None and value > limit:
            reasons.append(f"{key} {value:.3f} over the budget {limit:g}")
    lat = figures.get("latency_p95_ms")
    if budgets.max_latency_ms is not None and lat is not None and lat > budgets.max_latency_ms:
        reasons.append(f"p95 latency {lat:.2f} ms over the budget {budgets.max_latency_ms:g} ms")
    if reasons:
        return Decision("reject", reasons, figs)
    return Decision("promote", [f"within budgets after {n} compared calls"], figs)
