"""Calibration and evaluation data: .npy, .npz, or a folder of images.

- ``.npy``: one array of inputs, shape (N, ...).
- ``.npz``: arrays ``x`` (inputs) and optionally ``y`` (labels or targets); a file
  with a single array is read as ``x``.
- folder: image files (decoded with Pillow, resized and normalized to the model
  input); with one sub-folder per class, the sub-folder names become labels and ``y``.

Example:
    >>> ds = load_dataset("calib.npz", input_shape=(8, 8, 1))   # doctest: +SKIP
    >>> ds.x.shape, ds.y is not None                              # doctest: +SKIP
    ((300, 8, 8, 1), True)
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import DataError
from .manifest import Preprocessing

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
MAX_IMAGE_PIXELS = 40_000_000  # refuse decompression bombs well before Pillow's own limit


@dataclass
class Dataset:
    """Samples for a model: ``x`` is one array, or {input name: array} for a model with several inputs.

    ``y`` holds labels or targets (for the first classifier output); ``targets`` holds them per
    output name where a file gives them that way (``y_<output>`` arrays in an .npz).
    """

    x: np.ndarray | dict[str, np.ndarray]
    y: np.ndarray | None = None
    labels: list[str] | None = None
    source: str = "<array>"
    targets: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        first = next(iter(self.x.values())) if isinstance(self.x, dict) else self.x
        return int(first.shape[0])

    def take(self, rows: np.ndarray) -> "Dataset":
        """The samples at ``rows`` (every input, labels and targets alike)."""
        x = {k: v[rows] for k, v in self.x.items()} if isinstance(self.x, dict) else self.x[rows]
        targets = None if self.targets is None else {k: v[rows] for k, v in self.targets.items()}
        return Dataset(x, None if self.y is None else self.y[rows], self.labels, self.source, targets)

    def arrays(self, names: list[str]) -> dict[str, np.ndarray]:
        """{input name: array}; a one-input dataset is given the model's one name."""
        return dict(self.x) if isinstance(self.x, dict) else {names[0]: self.x}


PRESETS = {  # --normalize: pixel -> pixel x scale + offset, then (v - mean) / std
    "0-1": (1.0 / 255.0, 0.0, None, None),
    "-1-1": (2.0 / 255.0, -1.0, None, None),
    "raw": (1.0, 0.0, None, None),
    "imagenet": (1.0 / 255.0, 0.0, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def default_preprocessing(input_shape: Sequence[int], normalize: str = "0-1") -> Preprocessing | None:
    """Image preprocessing for an (H, W, C) input with 1 or 3 channels, else None."""
    if normalize not in PRESETS:
        raise DataError(f"unknown normalization {normalize!r}; choose one of {', '.join(PRESETS)}")
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3) or min(input_shape[:2]) < 1:
        return None
    scale, offset, mean, std = PRESETS[normalize]
    if mean is not None and input_shape[-1] == 1:
        mean, std = mean[:1], std[:1]
    return Preprocessing(height=int(input_shape[0]), width=int(input_shape[1]), channels=int(input_shape[2]),
                         scale=scale, offset=offset, mean=mean, std=std)


class PixelNormalizer:
    """Raw pixels (uint8, H x W x C) -> model values, with one input's preprocessing prepared once.

    The one place pixel normalization happens: image files here and uint8 frames in the runtime,
    where it runs per call, so the constants are numpy scalars and arrays made up front.

    Example:
        >>> norm = PixelNormalizer(Preprocessing(height=2, width=2, channels=1))
        >>> norm(np.full((2, 2, 1), 255, np.uint8)).max()
        1.0
    """

    __slots__ = ("scale", "offset", "mean", "inv_std")

    def __init__(self, pre: Preprocessing):
        self.scale, self.offset = np.float32(pre.scale), np.float32(pre.offset)
        self.mean = None if pre.mean is None else np.asarray(pre.mean, np.float32)
        self.inv_std = None if pre.std is None else (1.0 / np.asarray(pre.std, np.float32)).astype(np.float32)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        out = pixels.astype(np.float32)
        out *= self.scale
        out += self.offset
        if self.mean is not None:
            out -= self.mean
            out *= self.inv_std
        return out


def image_to_array(img, pre: Preprocessing, normalizer: PixelNormalizer | None = None) -> np.ndarray:
    """A PIL image -> float32 (H, W, C) array following the preprocessing spec."""
    from PIL import Image

    img = img.convert("L" if pre.channels == 1 else "RGB")
    if img.size != (pre.width, pre.height):
        img = img.resize((pre.width, pre.height), Image.BILINEAR)
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[..., None]
    return (normalizer or PixelNormalizer(pre))(arr)


def _load_image(path: Path, pre: Preprocessing) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise DataError(f"{path}: {img.width}x{img.height} pixels is over the {MAX_IMAGE_PIXELS:,} limit")
            img.load()
            return image_to_array(img, pre)
    except DataError:
        raise
    except Exception as err:  # Pillow raises many types for broken files
        raise DataError(f"{path}: not a readable image ({type(err).__name__}: {err})") from None


def _load_folder(path: Path, pre: Preprocessing | None) -> Dataset:
    if pre is None:
        raise DataError(f"{path}: an image folder needs a model with image input (H, W, 1 or 3)")
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[tuple[Path, int | None]] = []
    if subdirs:
        for label, d in enumerate(subdirs):
            files += [(f, label) for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    else:
        files = [(f, None) for f in sorted(path.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"{path}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) found")
    x = np.stack([_load_image(f, pre) for f, _ in files])
    if subdirs:
        y = np.asarray([lab for _, lab in files], dtype=np.int64)
        return Dataset(x, y, [d.name for d in subdirs], str(path))
    return Dataset(x, None, None, str(path))


def _read_numpy(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    """A .npy file's array, or an .npz file's arrays by name; one-line DataError for anything else."""
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        raise DataError(f"{path}: not a numpy file (no .npy header or .npz archive); save it with numpy.save/savez")
    try:
        if magic == b"\x93NUMPY":
            return np.load(path, allow_pickle=False)
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.keys()}
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise DataError(f"{path}: holds Python objects (pickled); save plain numeric arrays") from None
        raise DataError(f"{path}: not a readable numpy file ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"{path}: not a readable numpy file ({err})") from None


def _load_arrays(path: Path) -> Dataset:
    arrays = _read_numpy(path)
    if not isinstance(arrays, dict):
        return Dataset(arrays, None, None, str(path))
    keys = list(arrays)
    # inputs: everything but the labels ("y", "y_<output>", "labels"); one of them may carry the input's name
    inputs = [k for k in keys if k not in ("y", "labels", "group") and not k.startswith("y_")]  # group: audit/groups.py
    if "x" in keys:
        x = arrays["x"]
    elif len(inputs) == 1:
        x = arrays[inputs[0]]
    else:
        raise DataError(f"{path}: expected an array named 'x' (and optionally 'y'), found {keys}")
    labels = [str(v) for v in arrays["labels"].tolist()] if "labels" in keys else None
    return Dataset(x, arrays.get("y"), labels, str(path))


def load_dataset(
    source: str | Path | np.ndarray | tuple | Dataset,
    *,
    input_shape: Sequence[int] | None = None,
    preprocessing: Preprocessing | None = None,
    what: str = "data",
) -> Dataset:
    """Load and check data for a model input of ``input_shape`` (without the batch axis).

    Checks: numeric dtype, no NaN or Inf, at least one sample, and the sample shape.
    """
    if isinstance(source, Dataset):
        ds = source
    elif isinstance(source, tuple):
        ds = Dataset(np.asarray(source[0]), None if len(source) < 2 or source[1] is None else np.asarray(source[1]))
    elif isinstance(source, np.ndarray):
        ds = Dataset(source)
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(f"{path}: {what} file or folder not found")
        if path.is_dir():
            if preprocessing is None and input_shape is not None:
                preprocessing = default_preprocessing(input_shape)
            ds = _load_folder(path, preprocessing)
        elif path.suffix in (".npy", ".npz"):
            ds = _load_arrays(path)
        else:
            raise DataError(f"{path}: {what} must be a .npy or .npz file or a folder of images")
    return _checked(ds, input_shape, what)


def load_named(
    source: Any,
    *,
    input_shapes: dict[str, Sequence[int]],
    preprocessing: dict[str, Preprocessing] | None = None,
    what: str = "data",
) -> Dataset:
    """Data for a model with several inputs: one array per input name, all with the same count.

    ``source``: an .npz with an array per input name (``y`` for labels, ``y_<output>`` for targets
    of a named output), or a dict {input name: array, .npy path or image folder}.

    Example:
        >>> ds = load_named("eval.npz", input_shapes={"image": (8, 8, 1), "features": (4,)})  # doctest: +SKIP
        >>> sorted(ds.x), len(ds)                                                            # doctest: +SKIP
        (['features', 'image'], 450)
    """
    pre = preprocessing or {}
    y = targets = None
    labels = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file() or path.suffix != ".npz":
            raise DataError(f"{path}: {what} data for a model with inputs {', '.join(input_shapes)} must be an "
                            ".npz file with one array per input name")
        arrays = _read_numpy(path)
        if not isinstance(arrays, dict):
            raise DataError(f"{path}: holds one array; a model with inputs {', '.join(input_shapes)} needs an .npz "
                            "with one array per input name")
        where = str(path)
        y = arrays.pop("y", None)
        lab = arrays.pop("labels", None)
        arrays.pop("group", None)  # the audit's group labels (audit/groups.py), not an input
        labels = [str(v) for v in lab.tolist()] if lab is not None else None
        targets = {k[2:]: arrays.pop(k) for k in [k for k in arrays if k.startswith("y_")]} or None
    elif isinstance(source, dict):
        arrays, where = dict(source), "<dict>"
        y = arrays.pop("y", None)
    else:
        raise DataError(f"{what} data for a model with inputs {', '.join(input_shapes)} must be an .npz file or "
                        "a dict {input name: array}")
    unknown = sorted(set(arrays) - set(input_shapes))
    missing = [n for n in input_shapes if n not in arrays]
    if unknown or missing:
        raise DataError(f"{where}: {what} arrays {sorted(arrays)} do not match the model's inputs "
                        f"{list(input_shapes)}" + (f" (missing {missing})" if missing else "")
                        + (f" (unknown {unknown})" if unknown else ""))
    x = {}
    for name, shape in input_shapes.items():
        one = load_dataset(arrays[name], input_shape=shape, preprocessing=pre.get(name), what=f"{what} input {name!r}")
        x[name] = one.x
        labels = labels or one.labels
        y = y if y is not None else one.y
    counts = {n: int(a.shape[0]) for n, a in x.items()}
    if len(set(counts.values())) > 1:
        raise DataError(f"{where}: {what} inputs have different sample counts {counts}; give every input the same")
    n = next(iter(counts.values()))
    for name, t in [("y", y)] + list((targets or {}).items()):
        if t is not None and len(t) != n:
            raise DataError(f"{where}: {what} has {n} samples but {len(t)} values in {name}")
    return Dataset(x, None if y is None else np.asarray(y), labels, where, targets)


def named_sources(values: Sequence[str], option: str) -> str | dict[str, str] | None:
    """CLI data options: none, one path, or NAME=PATH once per input of a several-input model.

    Example:
        >>> named_sources(["image=imgs/", "features=f.npy"], "--calibration")
        {'image': 'imgs/', 'features': 'f.npy'}
    """
    if not values:
        return None
    if len(values) == 1 and "=" not in values[0]:
        return values[0]
    pairs = [v.split("=", 1) for v in values]
    bad = [v for v, p in zip(values, pairs) if len(p) != 2 or not p[0] or not p[1]]
    if bad:
        raise DataError(f"{option} {bad[0]!r}: give one PATH, or NAME=PATH once per model input")
    names = [p[0] for p in pairs]
    if len(set(names)) != len(names):
        raise DataError(f"{option}: input {sorted(n for n in names if names.count(n) > 1)[0]!r} is given twice")
    return {k: v for k, v in pairs}


def _checked(ds: Dataset, input_shape: Sequence[int] | None, what: str) -> Dataset:
    x = ds.x
    where = ds.source
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise DataError(f"{where}: {what} has dtype {x.dtype}; it must be numeric")
    if x.ndim == 0 or x.shape[0] == 0:
        raise DataError(f"{where}: {what} is empty")
    if input_shape is not None:
        want = tuple(int(d) for d in input_shape)
        got = tuple(x.shape[1:])

        def fits(shape: tuple) -> bool:
            return len(shape) == len(want) and all(w < 0 or w == g for w, g in zip(want, shape))

        if fits(tuple(x.shape)) and not fits(got):
            x = x[None]  # a single sample without the batch axis
        elif not fits(got):
            raise DataError(
                f"{where}: {what} samples have shape {got}, the model input wants {want} "
                f"(array shape should be (N, {', '.join(map(str, want))}))"
            )
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(x.shape[0], -1).any(axis=1).sum())
        raise DataError(f"{where}: {what} contains NaN or Inf in {bad} sample(s); clean or drop them")
    x = x.astype(np.float32, copy=False)
    y = ds.y
    if y is not None and len(y) != x.shape[0]:
        raise DataError(f"{where}: {what} has {x.shape[0]} inputs but {len(y)} labels")
    return Dataset(x, y, ds.labels, ds.source)
