"""What the guard does when something goes wrong: one action per failure kind, plus the thresholds.

Failure kinds and the actions each allows:

=========  ============================================  =====================================
kind       when                                          actions (default first)
=========  ============================================  =====================================
load       the model cannot be loaded or is tampered     fallback*, raise
invoke     the interpreter fails while running           fallback*, default, raise
input      shape, dtype, NaN/Inf, empty, undecodable     raise, default
ood        out of range, clipped by int8, OOD score      allow, fallback, default, raise
output     NaN/Inf, not a distribution, low confidence   fallback*, default, raise, allow
latency    a call over ``latency_budget_ms``             allow, default, raise
=========  ============================================  =====================================

``fallback`` uses the fallback model (``EdgeModel.load(..., fallback="fp32.tflite")``);
``*`` without one it raises. ``default`` returns ``Policy.default``. ``allow`` returns the
model's answer with the check marked as failed. Every action other than a clean pass
writes an incident.

Example:
    >>> p = Policy(on_ood="fallback", min_confidence=0.5)
    >>> p.action("ood"), p.action("input")
    ('fallback', 'raise')
    >>> Policy(on_input="fallback")
    Traceback (most recent call last):
    ...
    edgekit.errors.UsageError: Policy(on_input='fallback') is not allowed; choose one of raise, default
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..data import MAX_IMAGE_PIXELS
from ..errors import UsageError

KINDS = ("load", "invoke", "input", "ood", "output", "latency")
ALLOWED = {
    "load": ("fallback", "raise"),
    "invoke": ("fallback", "default", "raise"),
    # A fallback model would get the same broken input, so it cannot help here.
    "input": ("raise", "default"),
    "ood": ("allow", "fallback", "default", "raise"),
    "output": ("fallback", "default", "raise", "allow"),
    # By the time latency is known the work is done: falling back would only add more.
    "latency": ("allow", "default", "raise"),
}


@dataclass(frozen=True)
class Policy:
    """Actions per failure kind and the guard's thresholds. None means "check off"."""

    on_load: str = "fallback"
    on_invoke: str = "fallback"
    on_input: str = "raise"
    on_ood: str = "allow"
    on_output: str = "fallback"
    on_latency: str = "allow"
    default: Any = None  # what the "default" action returns, per sample (e.g. a probability vector)
    verify_sha256: bool = True  # refuse bytes that differ from the manifest's sha256
    probe: bool = True  # load untrusted bytes in a subprocess first (cached by sha256)
    range_tolerance: float | None = 0.1  # share of the calibration span allowed beyond min/max
    max_clip_share: float | None = 0.01  # share of values int8 quantization may saturate
    ood_threshold: float | None = 1.0  # OOD score above which a sample is flagged
    sum_tolerance: float = 0.02  # |sum(probabilities) - 1| allowed (plus the output's quantization step)
    min_confidence: float | None = None  # top-1 probability below which the output is flagged
    latency_budget_ms: float | None = None
    max_batch: int = 4096
    max_image_pixels: int = MAX_IMAGE_PIXELS  # decompression-bomb guard for decoded images
    log_inputs: bool = False  # put raw input values in incident records (off: a summary only)

    def __post_init__(self) -> None:
        for kind in KINDS:
            act = getattr(self, f"on_{kind}")
            if act not in ALLOWED[kind]:
                raise UsageError(
                    f"Policy(on_{kind}={act!r}) is not allowed; choose one of {', '.join(ALLOWED[kind])}"
                )
            if act == "default" and self.default is None:
                raise UsageError(f"Policy(on_{kind}='default') needs Policy(default=...), the value to return")
        if self.max_batch < 1:
            raise UsageError(f"Policy(max_batch={self.max_batch}) must be at least 1")

    def action(self, kind: str) -> str:
        return getattr(self, f"on_{kind}")

    @classmethod
    def strict(cls, **overrides: Any) -> "Policy":
        """Raise on every failure, including out-of-distribution input and latency."""
        base = {f"on_{k}": "raise" for k in KINDS}
        base.update(overrides)
        return cls(**base)
