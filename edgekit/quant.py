"""Quantize and dequantize with a tensor's scale and zero point (numpy only).

real = scale * (q - zero_point)

Example:
    >>> import numpy as np
    >>> q = quantize(np.array([0.0, 0.5, 1.0], np.float32), 1 / 255, -128, "int8")
    >>> q.tolist(), dequantize(q, 1 / 255, -128).round(3).tolist()
    ([-128, 0, 127], [0.0, 0.502, 1.0])
"""

from __future__ import annotations

import numpy as np


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str | np.dtype) -> np.ndarray:
    info = np.iinfo(np.dtype(dtype))
    q = np.round(np.asarray(x, np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (np.asarray(q, np.float32) - np.float32(zero_point)) * np.float32(scale)


def clip_share(x: np.ndarray, scale: float, zero_point: int, dtype: str | np.dtype) -> float:
    """Share of values that quantization to ``dtype`` would clip to its min or max."""
    info = np.iinfo(np.dtype(dtype))
    lo = (info.min - zero_point) * scale
    hi = (info.max - zero_point) * scale
    x = np.asarray(x)
    return float(np.mean((x < lo - scale / 2) | (x > hi + scale / 2))) if x.size else 0.0
