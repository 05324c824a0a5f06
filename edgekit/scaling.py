"""Pixel scaling (``--normalize``) decided from evidence, never from a silent default.

Two kinds of evidence say which range a model's image input expects: the calibration data
when it is given as numbers (.npy/.npz, already scaled), and a quantized input's representable
range (scale and zero point). A preset contradicts the evidence when the evidence reaches well
outside the preset's range, or leaves a large part of it unused at one end: data in [-1, 1]
under the 0-1 preset, or in [0, 1] under -1-1. Convert, adopt and optimize check it before any
work starts; with no preset given, ``decide`` picks the one preset the evidence fits.

Example:
    >>> decide("0-1", [Evidence("calib.npy", -1.0, 1.0)])
    Traceback (most recent call last):
    ...
    edgekit.errors.DataError: --normalize 0-1 scales pixels to [0, 1], but calib.npy lies in [-1, 1]; pass --normalize -1-1 (or the preset that matches how the model was trained)
    >>> decide(None, [Evidence("calib.npy", -0.98, 1.0)])
    '-1-1'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .data import PRESETS
from .errors import DataError

OUTSIDE = 0.1  # evidence may pass the preset's range by this share of its span (rounding, interpolation)
UNUSED = 0.4  # ...and may leave at most this share of the span unused at either end
ORDER = ("0-1", "-1-1", "imagenet", "raw")  # when several fit, the first wins (0-1 is the common case)


@dataclass(frozen=True)
class Evidence:
    """A value range that says how an input is scaled, and where it was seen (for the message)."""

    where: str
    low: float
    high: float


def preset_range(normalize: str) -> tuple[float, float]:
    """The values a preset maps pixels 0..255 to (over every channel).

    Example:
        >>> preset_range("-1-1")
        (-1.0, 1.0)
    """
    scale, offset, mean, std = PRESETS[normalize]
    lo, hi = offset, 255.0 * scale + offset
    if mean is None:
        return float(lo), float(hi)
    m, s = np.asarray(mean), np.asarray(std)
    return float(np.min((lo - m) / s)), float(np.max((hi - m) / s))


def fits(normalize: str, ev: Evidence) -> bool:
    """True when the evidence's range is what this preset produces (see the module docstring)."""
    lo, hi = preset_range(normalize)
    span = hi - lo
    return (ev.low >= lo - OUTSIDE * span and ev.high <= hi + OUTSIDE * span
            and ev.low < lo + UNUSED * span and ev.high > hi - UNUSED * span)


def data_evidence(where: str, x: np.ndarray) -> Evidence:
    """The range of calibration data given as numbers."""
    return Evidence(where, float(np.min(x)), float(np.max(x)))


def quant_evidence(name: str, dtype: str, scale: float | None, zero_point: int | None) -> Evidence | None:
    """A quantized integer input's representable range, or None for a float input."""
    if not scale or dtype not in ("int8", "uint8", "int16"):
        return None
    info = np.iinfo(dtype)
    return Evidence(f"input {name}'s quantization ({dtype}, scale {scale:.6g}, zero point {zero_point})",
                    scale * (info.min - zero_point), scale * (info.max - zero_point))


def decide(declared: str | None, evidence: Sequence[Evidence], *, fallback: str | None = None) -> str | None:
    """The preset to record: the declared one if no evidence contradicts it, else refuse (DataError,
    one line naming both); with none declared, the first preset every piece of evidence fits, or
    None when none does (the numbers are not pixels scaled by any preset: record no pixel scaling).

    ``fallback``: what to use when nothing is declared and there is no evidence at all (None:
    refuse, asking for --normalize).
    """
    if declared is not None:
        if declared not in PRESETS:
            raise DataError(f"unknown normalization {declared!r}; choose one of {', '.join(PRESETS)}")
        for ev in evidence:
            if not fits(declared, ev):
                raise DataError(f"--normalize {declared} scales pixels to {_fmt(preset_range(declared))}, but "
                                f"{ev.where} lies in {_fmt((ev.low, ev.high))}; pass --normalize "
                                f"{_suggest([ev])} (or the preset that matches how the model was trained)")
        return declared
    if not evidence:
        if fallback is None:
            raise DataError("nothing shows how the image input is scaled (image files and a float input); "
                            "pass --normalize 0-1, -1-1, imagenet or raw, as the model was trained")
        return fallback
    return next((name for name in ORDER if all(fits(name, ev) for ev in evidence)), None)


def _suggest(evidence: Sequence[Evidence]) -> str:
    return decide(None, evidence) or "a preset that fits"


def _fmt(r: tuple[float, float]) -> str:
    return f"[{r[0]:.3g}, {r[1]:.3g}]"


def preset_of(pre) -> str | None:
    """The --normalize preset a recorded Preprocessing is, or None for a custom one."""
    from .data import default_preprocessing

    for name in PRESETS:
        p = default_preprocessing((pre.height, pre.width, pre.channels), name)
        if np.allclose([p.scale, p.offset], [pre.scale, pre.offset]) and (p.mean is None) == (pre.mean is None) and (
                p.mean is None or np.allclose([*p.mean, *p.std], [*pre.mean, *pre.std])):
            return name
    return None


def check_manifest_scaling(model, normalize: str) -> None:
    """``run --normalize`` on a model whose manifest records the pixel scaling: the same preset is
    fine, another is an error (UsageError naming both), never silently ignored.

    Example:
        >>> check_manifest_scaling("digits-int8.tflite", "-1-1")   # doctest: +SKIP
        Traceback (most recent call last):
        edgekit.errors.UsageError: --normalize -1-1 contradicts digits-int8.manifest.json, which scales input image as 0-1; ...
    """
    from .errors import UsageError
    from .manifest import Manifest, manifest_path_for

    if normalize not in PRESETS:
        raise DataError(f"unknown normalization {normalize!r}; choose one of {', '.join(PRESETS)}")
    m = Manifest.find(model)
    for name, pre in (m.preprocessing.items() if m is not None else ()):
        recorded = preset_of(pre)
        if recorded != normalize:
            said = recorded or f"x{pre.scale:.4g} {pre.offset:+g}" + (" with mean/std" if pre.mean else "")
            raise UsageError(f"--normalize {normalize} contradicts {manifest_path_for(model).name}, which scales input "
                             f"{name} as {said}; drop --normalize (the manifest's scaling is used), or adopt the "
                             "model again if the manifest is wrong")
