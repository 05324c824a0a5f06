"""Quantize and dequantize with a tensor's scale and zero point (numpy only): the one implementation.

real = scale * (q - zero_point)

``Quantizer`` and ``Dequantizer`` prepare their constants once (the runtime calls them on every
predict); ``quantize`` and ``dequantize`` are one-shot shorthands for them.

Example:
    >>> import numpy as np
    >>> q = quantize(np.array([0.0, 0.5, 1.0], np.float32), 1 / 255, -128, "int8")
    >>> q.tolist(), [round(float(v), 3) for v in dequantize(q, 1 / 255, -128)]
    ([-128, 0, 127], [0.0, 0.502, 1.0])
    >>> [round(float(v), 3) for v in Dequantizer(1 / 255, -128, "int8")(q)]   # 8-bit: a 256-entry table
    [0.0, 0.502, 1.0]
"""

from __future__ import annotations

import numpy as np


class Quantizer:
    """float -> integer codes for one tensor, constants prepared once.

    ``in_range=True`` means the caller proved every value quantizes without saturating: the clip
    is skipped. NaN input gets the dtype's largest code, without a warning (the caller rejects such input).
    """

    __slots__ = ("dtype", "inv_scale", "zp", "lo", "hi")

    def __init__(self, scale: float, zero_point: int, dtype: str | np.dtype):
        self.dtype = np.dtype(dtype)
        info = np.iinfo(self.dtype)
        self.inv_scale = np.float32(1.0 / scale)
        self.zp = np.float32(zero_point)
        self.lo, self.hi = np.float32(info.min), np.float32(info.max)

    def __call__(self, x: np.ndarray, in_range: bool = False) -> np.ndarray:
        """``x``: a float32 array (the one-shot ``quantize`` converts other input first)."""
        q = x * self.inv_scale  # a fresh array: rounded and clipped in place
        q += self.zp
        np.rint(q, out=q)
        if in_range:
            return q.astype(self.dtype)
        # fmin/fmax, not minimum/maximum: they take the bound over NaN, so NaN gets a defined code (the
        # largest) and the cast needs no np.errstate (which costs more than the two clips together)
        np.fmin(q, self.hi, out=q)
        np.fmax(q, self.lo, out=q)
        return q.astype(self.dtype)


class Dequantizer:
    """integer codes -> float32 for one tensor; 8-bit codes through a 256-entry table (one numpy call)."""

    __slots__ = ("table", "scale", "zp")

    def __init__(self, scale: float, zero_point: int, dtype: str | np.dtype | None = None):
        dt = np.dtype(dtype) if dtype is not None else None
        self.scale, self.zp = np.float32(scale), np.float32(zero_point)
        self.table = None
        if dt is not None and dt.itemsize == 1 and dt.kind in "iu":
            codes = np.arange(256, dtype=np.uint8).view(dt).astype(np.float32)
            self.table = ((codes - self.zp) * self.scale).astype(np.float32)

    def __call__(self, q: np.ndarray) -> np.ndarray:
        if self.table is not None:  # built only for a 1-byte dtype, which q then has
            return self.table.take(q.view(np.uint8))  # take: cheaper than fancy indexing on small arrays
        return (np.asarray(q, np.float32) - self.zp) * self.scale


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str | np.dtype) -> np.ndarray:
    return Quantizer(scale, zero_point, dtype)(np.asarray(x, np.float32))


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    q = np.asarray(q)
    return Dequantizer(scale, zero_point, q.dtype if q.dtype.kind in "iu" else None)(q)


def clip_share(x: np.ndarray, scale: float, zero_point: int, dtype: str | np.dtype) -> float:
    """Share of values that quantization to ``dtype`` would clip to its min or max."""
    info = np.iinfo(np.dtype(dtype))
    lo = (info.min - zero_point) * scale
    hi = (info.max - zero_point) * scale
    x = np.asarray(x)
    return float(np.mean((x < lo - scale / 2) | (x > hi + scale / 2))) if x.size else 0.0
