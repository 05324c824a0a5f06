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


class _Unset(float):
    """A default value that a manifest may override (``ood_threshold``): a float, but recognisable."""

    def __repr__(self) -> str:
        return float.__repr__(self)


DEFAULT_OOD_THRESHOLD = _Unset(1.0)


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
    # OOD score above which a sample is flagged; by default the manifest's guard.ood_threshold when it
    # has one (edgekit audit --write-threshold), else 1.0. A value given here always wins.
    ood_threshold: float | None = DEFAULT_OOD_THRESHOLD
    sum_tolerance: float = 0.02  # |sum(probabilities) - 1| allowed (plus the output's quantization step)
    min_confidence: float | None = None  # top-1 probability below which the output is flagged
    latency_budget_ms: float | None = None
    max_batch: int = 4096
    max_image_pixels: int = MAX_IMAGE_PIXELS  # decompression-bomb guard for decoded images
    # MB the model's tensors may need (estimated from the file) before allocation is refused as a
    # "load" failure. None: the RAM available at load time, since a model needing more would swap or
    # get the app OOM-killed; a fixed share of total RAM would pass it on a busy device. Not an "off".
    # An .onnx has no arena to estimate: the load probe measures its session's peak memory instead.
    max_model_memory_mb: float | None = None
    log_inputs: bool = False  # put raw input values in incident records (off: a summary only)
    max_logged_values: int = 4096  # with log_inputs: values kept per input and record (the rest counted)
    incident_log_max_bytes: int = 5_000_000  # the JSONL file rotates at this size (SD cards fill up)
    incident_log_backups: int = 2  # rotated files kept (incidents.jsonl.1, .2); older ones are dropped

    def ood_limit(self, manifest_threshold: float | None) -> float | None:
        """The OOD score limit to use: this policy's, unless it is the default and the manifest has one."""
        if type(self.ood_threshold) is _Unset and manifest_threshold is not None:
            return float(manifest_threshold)
        return None if self.ood_threshold is None else float(self.ood_threshold)

    def __post_init__(self) -> None:
        for kind in KINDS:
            act = getattr(self, f"on_{kind}")
            if act not in ALLOWED[kind]:
                raise UsageError(
                    f"Policy(on_{kind}={act!r}) is not allowed; choose one of {', '.join(ALLOWED[kind])}"
                )
            if act == "default" and self.default is None:
                raise UsageError(f"Policy(on_{kind}='default') needs Policy(default=...), the value to return")
        if self.max_model_memory_mb is not None and not self.max_model_memory_mb > 0:
            raise UsageError(f"Policy(max_model_memory_mb={self.max_model_memory_mb}) must be above 0 "
                             "(None: the RAM available at load)")
        if self.max_batch < 1:
            raise UsageError(f"Policy(max_batch={self.max_batch}) must be at least 1")
        if self.incident_log_max_bytes < 1024 or self.incident_log_backups < 0 or self.max_logged_values < 0:
            raise UsageError("Policy(incident_log_max_bytes=...) must be at least 1024, incident_log_backups and "
                             "max_logged_values at least 0")

    def action(self, kind: str) -> str:
        return getattr(self, f"on_{kind}")

    @classmethod
    def strict(cls, **overrides: Any) -> "Policy":
        """Raise on every failure, including out-of-distribution input and latency."""
        base = {f"on_{k}": "raise" for k in KINDS}
        base.update(overrides)
        return cls(**base)


class PolicyEngine:
    """Carries out the policy: ``act`` applies one failure kind's action to some rows of a prediction.

    It is the one place where the guard answers instead of the model: flagged input (``ood``),
    rejected output, a latency budget, a failed invoke and a primary model that never loaded all
    go through ``act`` (the last two on every row of a prediction made by ``blank``).

    ``fallback``: EdgeModel or None; ``default``: the first output's per-sample value (an array)
    or None; ``record(pred, kind, reason, action, inputs, rows)``: writes the incident.
    """

    def __init__(self, policy: Policy, fallback, default, record, input_names: list[str], output_names: list[str],
                 form=None):
        self.policy, self.fallback, self.default, self.record = policy, fallback, default, record
        self.input_names, self.output_names = list(input_names), list(output_names)
        self.form = form  # batch-first batches -> what a caller passes (coerce.Coercer.caller_form)

    def act(self, pred, rows, kind: str, reason: str, error: type, batches: list | None, action: str | None = None,
            *, log: bool = True) -> None:
        """Apply ``action`` (default: the policy's for ``kind``) to ``rows``: allow, fallback, default or raise.

        ``batches``: the model inputs (None when the input itself was unusable); ``log=False``: no
        incident (the primary that never loaded: its one load incident is already written)."""
        import numpy as np

        from ..errors import EdgekitError

        action = action or self.policy.action(kind)
        x = None if batches is None else [b[rows] for b in batches]
        if action == "fallback" and self.fallback is None:
            action = "raise"
            reason += " (no fallback model loaded)"
        if action == "raise":
            self.record(pred, kind, reason, "raise", x, rows)
            raise error(reason)
        if action == "fallback":
            try:
                alt = self._fallback_outputs(x)
            except EdgekitError as err:
                self.record(pred, kind, f"{reason}; the fallback failed too: {err}", "raise", x, rows)
                raise error(f"{reason}; the fallback model failed too: {err}") from None
            pred.replace_rows(rows, alt)
        elif action == "default":
            pred.replace_rows(rows, [self.default] + [np.float32(0)] * (len(pred.outputs) - 1), per_sample=True)
        if action != "allow":
            pred.set_source(rows, action)
        if log:
            self.record(pred, kind, reason, action, x, rows)

    def _fallback_outputs(self, x: list) -> list:
        return outputs_of(self.fallback, self.input_names, self.output_names, x, self.form)


def outputs_of(other, input_names: list[str], output_names: list[str], batches: list, form=None) -> list:
    """Another EdgeModel's outputs for ``batches`` (our input order, batch-first), in our output order
    (batch-first). ``form``: our batches -> what a caller passes (a state in its own layout, a shared
    value once); None when every input leads with its batch.

    Inputs and outputs are matched by name, or by position when the names differ (say, a
    version 1 file next to a version 2 one)."""
    if form is not None:
        batches = form(list(batches))
    if set(input_names) <= set(other.input_names):
        arg = dict(zip(input_names, batches))
    else:
        arg = batches[0] if len(batches) == 1 else list(batches)
    outs = other.predict(arg).outputs
    if set(output_names) <= set(other.output_names):
        return [outs[other.output_names.index(n)] for n in output_names]
    return list(outs)
