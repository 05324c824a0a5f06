"""Check a .tflite against a device profile, without TensorFlow: a typed report of what will not run.

Example:
    >>> report = check_model("digits-fp32.tflite", "coral-edge-tpu")   # doctest: +SKIP
    >>> report.compatible, [f.code for f in report.errors]             # doctest: +SKIP
    (False, ['float-op', 'dynamic-shape'])
"""

from __future__ import annotations

from pathlib import Path

from ..devices import DeviceProfile, load_profile
from ..engine.onnxrt import is_onnx
from ..engine.tflite_info import ModelInfo, read_model_info
from ..errors import ModelLoadError
from ..fsutil import read_bytes
from .report import CheckReport
from .rules import ALL_RULES


def check_info(info: ModelInfo, profile: DeviceProfile, model: str = "<model>") -> CheckReport:
    """Run every rule of edgekit.targets.rules; findings sorted errors first."""
    findings = [f for rule in ALL_RULES for f in rule(info, profile)]
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    interp = profile.interpreter + (f", --compat {profile.compat}" if profile.compat else "")
    plan = info.arena_for(profile.interpreter)
    return CheckReport(model=model, target=profile.name, interpreter=interp, findings=tuple(findings),
                       size_bytes=info.size_bytes, weight_bytes=info.weight_bytes,
                       arena_bytes=plan.total_bytes if plan else info.arena_bytes,
                       arena_caveat=plan.caveat() if plan else "")


def check_model(model: str | Path, target: str | Path | DeviceProfile) -> CheckReport:
    """Check a model file against a shipped profile name, a profile .toml path, or a DeviceProfile."""
    profile = target if isinstance(target, DeviceProfile) else load_profile(target)
    data = read_bytes(model, ModelLoadError, "model file")
    if is_onnx(data):
        from .onnx_check import check_onnx

        return check_onnx(data, profile, model=str(model))
    return check_info(read_model_info(data, label=str(model)), profile, model=str(model))
