"""Seeded corruptions of model input, in the model's own input units. numpy and Pillow only.

Every perturbation takes a float32 batch (N, ...), a strength and a numpy Generator and
returns a new batch clipped to the data's value range ``(lo, hi)``. Strengths are shares
of that range (noise sigma, brightness shift), factors (contrast, scaling), pixels (blur
sigma), shares of the image area (occlusion) or JPEG quality, as each PERTURBATIONS entry
says. Image perturbations need (N, H, W, C) input with 1 or 3 channels.

Example:
    >>> import numpy as np
    >>> x = np.full((2, 8, 8, 1), 0.5, np.float32)
    >>> p = PERTURBATIONS["gaussian_noise"]
    >>> y = p.apply(x, 0.1, (0.0, 1.0), np.random.default_rng(0))
    >>> y.shape, bool(y.min() >= 0.0), round(float(np.std(y - x)), 2)
    ((2, 8, 8, 1), True, 0.1)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class Perturbation:
    """A named corruption with the strengths the audit tries, weakest first."""

    name: str
    fn: Callable[[np.ndarray, float, Range, np.random.Generator], np.ndarray]
    strengths: tuple[float, ...]
    unit: str  # what a strength means, for the report's axis
    image_only: bool = False

    def apply(self, x: np.ndarray, strength: float, rng_: Range, gen: np.random.Generator) -> np.ndarray:
        lo, hi = rng_
        return np.clip(self.fn(x, strength, rng_, gen), lo, hi).astype(np.float32)


def is_image(sample_shape: tuple[int, ...]) -> bool:
    """(H, W, C) with 1 or 3 channels and at least 4x4 pixels."""
    return len(sample_shape) == 3 and sample_shape[-1] in (1, 3) and min(sample_shape[:2]) >= 4


def _span(r: Range) -> float:
    return float(r[1] - r[0]) or 1.0


def gaussian_noise(x, sigma, r, gen):
    return x + gen.normal(0.0, sigma * _span(r), x.shape).astype(np.float32)


def scaling(x, factor, r, gen):
    """Multiply every value (a gain change of a sensor or a wrong normalization)."""
    return x * np.float32(factor)


def brightness(x, shift, r, gen):
    return x + np.float32(shift * _span(r))


def contrast(x, factor, r, gen):
    """Pull every sample toward its own mean: factor 1 keeps it, 0 makes it flat."""
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    return mean + (x - mean) * np.float32(factor)


def _gauss_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).astype(np.float32)


def blur(x, sigma, r, gen):
    """Separable Gaussian blur over H and W with edge padding (sigma in pixels)."""
    k = _gauss_kernel(sigma)
    pad = len(k) // 2
    out = x
    for axis in (1, 2):
        widths = [(0, 0)] * x.ndim
        widths[axis] = (pad, pad)
        padded = np.pad(out, widths, mode="edge")
        n = out.shape[axis]
        out = sum(k[i] * np.take(padded, np.arange(i, i + n), axis=axis) for i in range(len(k)))
    return out


def occlusion(x, area, r, gen):
    """A square of ``area`` share of the image at a random place per sample, filled with the range's low end."""
    out = x.copy()
    h, w = x.shape[1:3]
    side = max(1, int(round(np.sqrt(area * h * w))))
    side = min(side, h, w)
    ys = gen.integers(0, h - side + 1, len(x))
    xs = gen.integers(0, w - side + 1, len(x))
    for i, (y0, x0) in enumerate(zip(ys, xs)):
        out[i, y0:y0 + side, x0:x0 + side, :] = r[0]
    return out


def jpeg(x, quality, r, gen):
    """Re-encode each image as JPEG at ``quality`` (Pillow) and decode it back into input units."""
    from PIL import Image

    lo, span = r[0], _span(r)
    u8 = np.clip(np.round((x - lo) / span * 255.0), 0, 255).astype(np.uint8)
    out = np.empty_like(x)
    for i, img in enumerate(u8):
        mode = "L" if img.shape[-1] == 1 else "RGB"
        buf = io.BytesIO()
        Image.fromarray(img[..., 0] if mode == "L" else img, mode).save(buf, "JPEG", quality=int(quality))
        buf.seek(0)
        dec = np.asarray(Image.open(buf).convert(mode), np.float32)
        out[i] = (dec[..., None] if mode == "L" else dec) / 255.0 * span + lo
    return out


PERTURBATIONS: dict[str, Perturbation] = {p.name: p for p in (
    Perturbation("gaussian_noise", gaussian_noise, (0.05, 0.1, 0.2, 0.3, 0.5), "sigma (share of the value range)"),
    Perturbation("scaling", scaling, (0.9, 0.75, 0.5, 1.25, 1.5), "factor"),
    Perturbation("brightness", brightness, (0.1, 0.2, 0.3, -0.1, -0.2), "shift (share of the value range)",
                 image_only=True),
    Perturbation("contrast", contrast, (0.8, 0.6, 0.4, 0.2), "factor toward the mean", image_only=True),
    Perturbation("blur", blur, (0.5, 0.75, 1.0, 1.5), "Gaussian sigma (pixels)", image_only=True),
    Perturbation("occlusion", occlusion, (0.05, 0.1, 0.2, 0.3), "share of the image area", image_only=True),
    Perturbation("jpeg", jpeg, (90, 70, 50, 30, 10), "JPEG quality", image_only=True),
)}


def applicable(sample_shape: tuple[int, ...]) -> list[Perturbation]:
    """The perturbations that fit this input: all of them for images, noise and scaling otherwise."""
    img = is_image(sample_shape)
    return [p for p in PERTURBATIONS.values() if img or not p.image_only]


COMMON_RANGES = {"0..1": (0.0, 1.0), "-1..1": (-1.0, 1.0), "0..255": (0.0, 255.0)}


def deployment_mistakes(x: np.ndarray, rng_: Range) -> dict[str, np.ndarray]:
    """The classic field failures as input sets: pixels in another common range than the model's, BGR for RGB,
    transposed images. Each keyed by what went wrong; a mistake that is a no-op for this model is left out.

    Example:
        >>> x = np.random.default_rng(0).uniform(0, 1, (3, 4, 4, 3)).astype(np.float32)
        >>> sorted(deployment_mistakes(x, (0.0, 1.0)))
        ['bgr_for_rgb', 'range_-1..1', 'range_0..255', 'transposed']
        >>> float(deployment_mistakes(x, (0.0, 1.0))["range_0..255"].max()) > 200
        True
    """
    lo, hi = rng_
    unit = (x - lo) / _span(rng_)  # the model's own range mapped to 0..1
    out = {}
    for name, (a, b) in COMMON_RANGES.items():
        if not (np.isclose(a, lo, atol=0.05 * _span(rng_)) and np.isclose(b, hi, atol=0.05 * _span(rng_))):
            out[f"range_{name}"] = (a + unit * (b - a)).astype(np.float32)
    if x.ndim == 4 and x.shape[-1] == 3:
        out["bgr_for_rgb"] = np.ascontiguousarray(x[..., ::-1])
    if x.ndim == 4 and x.shape[1] == x.shape[2] and x.shape[-1] in (1, 3):
        out["transposed"] = np.ascontiguousarray(x.transpose(0, 2, 1, 3))  # a (W, H) buffer read as (H, W)
    return out
