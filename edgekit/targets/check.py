"""Check a .tflite against a device profile, without TensorFlow: a typed report of what will not run.

Example:
    >>> report = check_model("digits-fp32.tflite", "coral-edge-tpu")   # doctest: +SKIP
    >>> report.compatible, [f.code for f in report.errors]             # doctest: +SKIP
    (False, ['float-op', 'dynamic-shape'])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..devices import DeviceProfile, load_profile
from ..engine.onnxrt import is_onnx
from ..engine.tflite_info import ModelInfo, read_model_info
from ..errors import ModelLoadError
from ..fsutil import read_bytes
from .rules import ALL_RULES, ERROR, WARNING, Finding


@dataclass(frozen=True)
class CheckReport:
    model: str
    target: str
    interpreter: str
    findings: tuple[Finding, ...]
    size_bytes: int
    weight_bytes: int
    arena_bytes: int | None  # estimate (see edgekit.modelinfo); None for .onnx (not estimated)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == WARNING)

    @property
    def compatible(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "target": self.target, "interpreter": self.interpreter,
                "compatible": self.compatible, "size_bytes": self.size_bytes, "weight_bytes": self.weight_bytes,
                "arena_bytes_estimate": self.arena_bytes,
                "findings": [{"severity": f.severity, "code": f.code, "message": f.message} for f in self.findings]}

    def render(self) -> str:
        verdict = "compatible" if self.compatible else "NOT compatible"
        n_err, n_warn = len(self.errors), len(self.warnings)
        head = (f"{self.model} on {self.target} ({self.interpreter}): {verdict}: {n_err} error(s), {n_warn} warning(s); "
                f"file {self.size_bytes / 1024:,.1f} KB, weights {self.weight_bytes / 1024:,.1f} KB"
                + ("" if self.arena_bytes is None else f", arena ~{self.arena_bytes / 1024:,.1f} KB (estimate)"))
        return "\n".join([head] + [f.line() for f in self.findings])


def check_info(info: ModelInfo, profile: DeviceProfile, model: str = "<model>") -> CheckReport:
    """Run every rule of edgekit.targets.rules; findings sorted errors first."""
    findings = [f for rule in ALL_RULES for f in rule(info, profile)]
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    interp = profile.interpreter + (f", --compat {profile.compat}" if profile.compat else "")
    return CheckReport(model=model, target=profile.name, interpreter=interp, findings=tuple(findings),
                       size_bytes=info.size_bytes, weight_bytes=info.weight_bytes, arena_bytes=info.arena_bytes)


def check_model(model: str | Path, target: str | Path | DeviceProfile) -> CheckReport:
    """Check a model file against a shipped profile name, a profile .toml path, or a DeviceProfile."""
    profile = target if isinstance(target, DeviceProfile) else load_profile(target)
    data = read_bytes(model, ModelLoadError, "model file")
    if is_onnx(data):
        from .onnx_check import check_onnx

        return check_onnx(data, profile, model=str(model))
    return check_info(read_model_info(data, label=str(model)), profile, model=str(model))
