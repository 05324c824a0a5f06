"""Turn what a caller passes into a float32 batch ``(N, *sample_shape)`` for the model.

Accepted: numpy arrays and nested lists (one sample or a batch), PIL images, image file
paths, encoded image bytes, and lists of those. Rules:

- float arrays are model input values (already preprocessed);
- ``uint8`` arrays with an image model are raw pixels: the manifest's preprocessing
  (scale, offset, mean, std) is applied, as for images;
- other integer arrays are model input values; bool, complex, object and string
  arrays are refused;
- images are decoded with a pixel limit (decompression bombs) and resized to the model;
- ``batch_axis`` (layout.py): a batch of an input batched on another axis (a recurrent state
  ``[2, N, 128]``) is moved batch-first; an input with no batch axis (None: a scalar shared by the
  call) takes one value, returned as a batch of one for coerce.py to broadcast.

Anything else raises InputValidationError with a one-line message.

Example:
    >>> import numpy as np
    >>> c = InputCoercer(sample_shape=(8, 8, 1), preprocessing=None, max_batch=16, max_pixels=10**6)
    >>> batch, batched = c(np.zeros((8, 8, 1)))
    >>> batch.shape, batch.dtype.name, batched
    ((1, 8, 8, 1), 'float32', False)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ..data import PixelNormalizer, image_to_array
from ..manifest import Preprocessing
from ..errors import InputValidationError

_F32 = np.dtype(np.float32)


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _is_image_like(x: Any) -> bool:
    if isinstance(x, (str, Path, bytes, bytearray, memoryview)):
        return True
    # Checked by module name so that plain array calls never import Pillow.
    return type(x).__module__.startswith("PIL.")


class InputCoercer:
    """Callable: input -> (float32 batch, batched?), with everything precomputed from the model."""

    def __init__(self, sample_shape: tuple[int, ...], preprocessing: Preprocessing | None,
                 max_batch: int, max_pixels: int, batch_axis: int | None = 0):
        self.batch_axis = batch_axis
        self.shared = batch_axis is None
        self.sample_shape = tuple(int(d) for d in sample_shape)
        self.rank = len(self.sample_shape)
        self.dynamic = any(d < 0 for d in self.sample_shape)
        self._fixed = None if self.dynamic else self.sample_shape  # one sample's shape, when fixed
        self.pre = preprocessing
        self.max_batch = max_batch
        self.max_pixels = max_pixels
        self._pixels = PixelNormalizer(preprocessing) if preprocessing is not None else None
        k = batch_axis or 0
        self.wanted = (f"one value of shape {_shape_str(self.sample_shape)} for the whole call" if self.shared else
                       f"one sample {_shape_str(self.sample_shape)} or a batch "
                       f"{_shape_str(self.sample_shape[:k] + ('N',) + self.sample_shape[k:])}")

    # ---- entry point -------------------------------------------------------
    def __call__(self, x: Any) -> tuple[np.ndarray, bool]:
        # Fast path: a float32 numpy array, the common case on a device loop; one sample of a fixed shape
        # answered here (this runs on every call: each method call it saves is ~0.1 us, more after an
        # engine call has taken the CPU caches).
        if type(x) is np.ndarray and x.dtype == _F32:
            if x.shape == self._fixed:
                return x[None], False
            return self._shaped(x)
        if x is None:
            raise InputValidationError("input is None; pass an array, a list, a PIL image, an image path or bytes")
        if isinstance(x, np.ndarray):
            if isinstance(x, np.ma.MaskedArray):  # the checks would skip masked values the model still reads
                raise InputValidationError("input is a masked array (numpy.ma); the model reads the values under "
                                           "the mask too: pass x.filled(value) or np.asarray(x)")
            if x.dtype.kind in "iuf":
                self._shaped(x)  # shape and batch first: a refused array is never converted (a full copy)
            return self._shaped(self._numeric(x))
        if _is_image_like(x):
            return self._shaped(self._image(x))
        if isinstance(x, (list, tuple)):
            if len(x) == 0:
                raise InputValidationError(f"input is an empty list; the model wants {self.wanted}")
            if all(_is_image_like(item) for item in x):
                self._check_batch(len(x))
                return self._shaped(np.stack([self._image(item) for item in x]))
            try:
                arr = np.asarray(x)
            except (ValueError, TypeError) as err:  # ragged nesting
                raise InputValidationError(f"input list is ragged or mixed ({str(err).splitlines()[0][:120]}); "
                                           f"the model wants {self.wanted}") from None
            return self._shaped(self._numeric(arr))
        if isinstance(x, (int, float, np.number)):
            return self._shaped(self._numeric(np.asarray(x)))
        raise InputValidationError(f"cannot use a {type(x).__name__} as input; pass an array, a list, "
                                   "a PIL image, an image path or bytes")

    # ---- arrays ------------------------------------------------------------
    def _numeric(self, x: np.ndarray) -> np.ndarray:
        k = x.dtype.kind
        if k == "f":
            with np.errstate(over="ignore"):  # float64 beyond float32 becomes Inf: the finite check reports it
                return x.astype(_F32, copy=False)
        if k == "u" and x.dtype.itemsize == 1 and self._pixels is not None:
            return self._pixels(x)  # raw uint8 pixels: the manifest's image preprocessing
        if k in "iu":
            return x.astype(_F32)
        names = {"b": "bool", "c": "complex", "O": "object (Python objects)", "U": "string", "S": "bytes string",
                 "M": "datetime", "m": "timedelta", "V": "structured"}
        raise InputValidationError(f"input dtype {x.dtype} ({names.get(k, k)}) is not model input; "
                                   "pass int or float numbers")

    def _check_batch(self, n: int) -> None:
        if n == 0:
            raise InputValidationError(f"input batch is empty; the model wants {self.wanted}")
        if n > self.max_batch:
            raise InputValidationError(f"input batch of {n:,} samples is over the limit of {self.max_batch:,}; "
                                       "split it or raise Policy(max_batch=...)")

    def _fits(self, shape: tuple[int, ...]) -> bool:
        if not self.dynamic:
            return shape == self.sample_shape
        return len(shape) == self.rank and all(w < 0 or w == g for w, g in zip(self.sample_shape, shape))

    def _shaped(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        shape = x.shape
        if len(shape) == self.rank + 1 and self._fits(shape[1:]):
            self._check_batch(shape[0])
            return x, True
        if self._fits(shape):
            return x[None], False
        if x.size == 0:
            raise InputValidationError(f"input is empty (shape {_shape_str(shape)}); the model wants {self.wanted}")
        raise InputValidationError(f"input has shape {_shape_str(shape)}; the model wants {self.wanted}")

    # ---- images ------------------------------------------------------------
    def _image(self, item: Any) -> np.ndarray:
        if self.pre is None:
            raise InputValidationError("this model has no image preprocessing in its manifest; pass a numeric "
                                       "array, or give the pixel scaling (edgekit run --normalize 0-1, "
                                       "EdgeModel.load(..., preprocessing='0-1'))")
        from PIL import Image

        if isinstance(item, Image.Image):
            self._check_pixels(item.width, item.height, "image")
            return self._from_pil(item, "image")
        if isinstance(item, (bytes, bytearray, memoryview)):
            return self._decode(io.BytesIO(bytes(item)), f"image bytes ({len(item):,} bytes)")
        path = Path(item)
        if not path.is_file():
            raise InputValidationError(f"{path}: no such image file")
        return self._decode(path, str(path))

    def _check_pixels(self, width: int, height: int, where: str) -> None:
        if width * height > self.max_pixels:
            raise InputValidationError(f"{where}: {width}x{height} pixels is over the {self.max_pixels:,} limit "
                                       "(decompression bomb?); resize it first")
        if width * height == 0:
            raise InputValidationError(f"{where}: the image is empty (0 pixels)")

    def _from_pil(self, img, where: str) -> np.ndarray:
        try:
            return image_to_array(img, self.pre, self._pixels)
        except Exception as err:  # Pillow raises many types on broken data
            raise InputValidationError(f"{where}: cannot read the image ({type(err).__name__}: "
                                       f"{str(err)[:120]})") from None

    def _decode(self, source, where: str) -> np.ndarray:
        from PIL import Image

        try:
            img = Image.open(source)
        except Image.DecompressionBombError:  # Pillow's own limit (2x its MAX_IMAGE_PIXELS) tripped first
            raise InputValidationError(f"{where}: the image is over Pillow's pixel limit (decompression bomb?); "
                                       "resize it first") from None
        except Exception as err:
            raise InputValidationError(f"{where}: not a readable image ({type(err).__name__}); "
                                       "pass PNG, JPEG or another format Pillow reads") from None
        with img:
            # Checked on the header, before any pixel is decoded.
            self._check_pixels(img.width, img.height, where)
            try:
                img.load()
            except Exception as err:  # truncated or corrupt data
                raise InputValidationError(f"{where}: corrupt or truncated image ({type(err).__name__}: "
                                           f"{str(err)[:120]})") from None
            return self._from_pil(img, where)


class OffAxisCoercer(InputCoercer):
    """An input batched on another axis than the first (a state ``[2, N, 128]``: a batch is moved
    batch-first, a view), or on none (``batch_axis`` None: one value for the whole call, returned as
    a batch of one that coerce.py broadcasts to the call's batch)."""

    def _shaped(self, x: np.ndarray) -> tuple[np.ndarray, bool]:
        shape, k = x.shape, self.batch_axis
        if k is not None and len(shape) == self.rank + 1 and self._fits(shape[:k] + shape[k + 1:]):
            self._check_batch(shape[k])
            return np.moveaxis(x, k, 0), True
        if self._fits(shape):
            return x[None], False
        if x.size == 0:
            raise InputValidationError(f"input is empty (shape {_shape_str(shape)}); the model wants {self.wanted}")
        raise InputValidationError(f"input has shape {_shape_str(shape)}; the model wants {self.wanted}")


def coercer_for(sample_shape: tuple[int, ...], preprocessing: Preprocessing | None, max_batch: int, max_pixels: int,
                batch_axis: int | None = 0) -> InputCoercer:
    """The coercer of one input: batch-first (the common, fast one) or laid out otherwise."""
    cls = InputCoercer if batch_axis == 0 else OffAxisCoercer
    return cls(sample_shape, preprocessing, max_batch, max_pixels, batch_axis)
