"""``edgekit check m.onnx --target T``: simple, honest rules for an ONNX model on a device profile.

What is known without running it: accelerators that take only .tflite (the Edge TPU, TensorFlow
Lite Micro) refuse it; ONNX Runtime has PyPI wheels only for Python 3.11+ on x86_64 and aarch64;
the model needs a runtime that implements its opset and IR version (the ONNX release that defined
them comes from the onnx package's own table); the file against the profile's size budget.

Example:
    >>> check_onnx("digits.onnx", load_profile("raspberry-pi-5")).compatible   # doctest: +SKIP
    True
"""

from __future__ import annotations

from ..devices import DeviceProfile
from ..engine.onnx_info import read_onnx_info
from .report import CheckReport
from .rules import ERROR, INFO, WARNING, Finding, _kb

# accelerator -> why it cannot take an ONNX file
TFLITE_ONLY = {
    "edgetpu": "the Edge TPU runs only .tflite models compiled by edgetpu_compiler",
    "tflm": "TensorFlow Lite Micro runs only .tflite flatbuffers",
}
ORT_ARCHES = ("x86_64", "aarch64")
EXTRA_MIN_ORT = "1.20"  # pyproject's onnx extra


def _onnx_release(opset: int, ir_version: int) -> str | None:
    """The first ONNX release with this ai.onnx opset and IR version (onnx.helper.VERSION_TABLE)."""
    import onnx

    for release, ir, op, *_ in onnx.helper.VERSION_TABLE:
        if op >= opset and ir >= ir_version:
            return release
    return None


def onnx_findings(info: dict, profile: DeviceProfile) -> list[Finding]:
    """One finding per reason, errors first (as the .tflite rules)."""
    out = []
    if profile.accelerator in TFLITE_ONLY:
        out.append(Finding(ERROR, "tflite-only", f"{TFLITE_ONLY[profile.accelerator]}; convert the source to "
                                                 ".tflite (edgekit convert SOURCE -o m.tflite)"))
    elif profile.arch not in ORT_ARCHES or profile.os_bits != 64:
        out.append(Finding(ERROR, "no-onnxruntime", f"ONNX Runtime has no wheel for {profile.arch} "
                                                    f"({profile.os_bits}-bit); use a .tflite there"))
    elif profile.accelerator == "gpu":
        out.append(Finding(WARNING, "cpu-only", "the PyPI onnxruntime wheel runs on the CPU only: the GPU needs "
                                                "a vendor build of ONNX Runtime (CUDA/TensorRT), not checked here"))
    opset = info["opsets"].get("ai.onnx", 0)
    release = _onnx_release(opset, info["ir_version"])
    out.append(Finding(INFO, "onnxruntime", f"needs ONNX Runtime implementing ai.onnx opset {opset} and IR version "
                                            f"{info['ir_version']} (ONNX {release or 'newer than this onnx package'}"
                                            f"); `pip install edgekit[onnx]` (Python 3.11+) installs onnxruntime "
                                            f">= {EXTRA_MIN_ORT}"))
    if profile.max_size_kb is not None and info["size_bytes"] > profile.max_size_kb * 1024:
        out.append(Finding(ERROR, "size", f"the file is {_kb(info['size_bytes'])}, over the "
                                          f"{_kb(profile.max_size_kb * 1024)} budget of {profile.name}"))
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    return sorted(out, key=lambda f: order[f.severity])


def check_onnx(data: bytes, profile: DeviceProfile, model: str = "<model>") -> CheckReport:
    info = read_onnx_info(data, model)
    return CheckReport(model=model, target=profile.name, interpreter="onnxruntime",
                       findings=tuple(onnx_findings(info, profile)), size_bytes=info["size_bytes"],
                       weight_bytes=info["initializers"]["bytes"], arena_bytes=None)
