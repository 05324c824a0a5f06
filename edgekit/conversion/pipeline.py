"""``edgekit.convert``: source model -> .tflite + manifest, with pruning and an accuracy check.

Example:
    >>> import edgekit
    >>> r = edgekit.convert("digits.keras", "digits-int8.tflite", recipe="int8",
    ...                     calibration="calib.npz", eval_data="eval.npz")   # doctest: +SKIP
    >>> print(r.table())                                                      # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import platform
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..backends import make_interpreter
from ..data import Dataset, default_preprocessing, load_dataset
from ..devices import load_profile
from ..errors import DataError, ModelLoadError, SourceModelError, UsageError
from ..flatbuf import custom_ops, io_specs
from ..fsutil import atomic_write_bytes, sha256_bytes
from ..manifest import Manifest, manifest_path_for, tensor_specs
from ..recipes import Recipe, load_recipe
from ..stats import compute_input_stats
from .evaluate import accuracy_check
from .loader import load_source
from .prune import prune_model
from .result import ConvertResult
from .tf import captured
from .tflite import COMPAT_TARGETS, to_tflite

MIN_CALIBRATION = 100
MAX_CALIBRATION = 1000  # more adds time, not accuracy


def _tool_versions() -> dict[str, str]:
    import importlib.metadata as md

    from .tf import import_tf

    out = {"edgekit": __version__, "python": platform.python_version(), "tensorflow": import_tf().__version__}
    for dist in ("keras", "numpy", "ai-edge-litert"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _check_paths(source: Path, output: Path, force: bool) -> None:
    if output.suffix != ".tflite":
        raise UsageError(f"{output}: the output file must end in .tflite")
    src = source.resolve()
    for p in (output, manifest_path_for(output)):
        if p.resolve() == src or src in p.resolve().parents:
            raise UsageError(f"{p}: would overwrite the source model; choose another output path")
    if output.exists() and not force:
        raise UsageError(f"{output}: already exists; pass --force to replace it")
    if output.is_dir():
        raise UsageError(f"{output}: is a folder; give a file path ending in .tflite")


def _resolve_preprocessing(preprocessing, input_shape: Sequence[int], normalize: str):
    if isinstance(preprocessing, dict):
        return preprocessing
    if preprocessing == "digits":
        from ..digits import PREPROCESSING

        return dict(PREPROCESSING)
    if preprocessing == "none":
        return None
    return default_preprocessing(input_shape, normalize)


def _labels(labels, datasets: list[Dataset | None]) -> list[str] | None:
    if isinstance(labels, (str, Path)):
        p = Path(labels)
        if not p.is_file():
            raise DataError(f"{p}: labels file not found (one label per line)")
        return [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if labels is not None:
        return [str(v) for v in labels]
    for ds in datasets:
        if ds is not None and ds.labels:
            return ds.labels
    return None


def convert(
    source: str | Path,
    output: str | Path,
    *,
    recipe: str | Path | Recipe | None = None,
    calibration: Any = None,
    eval_data: Any = None,
    train_data: Any = None,
    target: str | Path | None = None,
    prune: float | None = None,
    fine_tune_epochs: int = 2,
    compat: str | None = None,
    select_tf_ops: bool = False,
    labels: Sequence[str] | str | Path | None = None,
    preprocessing: dict | str | None = None,
    normalize: str = "0-1",
    force: bool = False,
    quiet: bool = False,
    debug: bool = False,
    denylist: Sequence[str] | None = None,
) -> ConvertResult:
    """Convert a Keras / SavedModel source to TensorFlow Lite and write its manifest.

    calibration / eval_data / train_data: a .npy/.npz path, an image folder, an array,
    or an (x, y) tuple. ``target`` picks the device profile's preferred recipe when
    ``recipe`` is None. ``prune`` (0..1) overrides the recipe's prune_sparsity.
    ``debug``: rank layers by the error int8 quantization adds (result.debug, see debug.py).
    ``denylist``: layers (Keras or tensor names) kept in float in an int8 recipe.
    """
    t0 = time.perf_counter()
    warnings: list[str] = []
    source, output = Path(source), Path(output)
    if not source.exists():
        raise SourceModelError(f"{source}: no such file or folder")
    _check_paths(source, output, force)
    if compat is not None and compat not in COMPAT_TARGETS:
        raise DataError(f"unknown --compat {compat!r}; choose one of {', '.join(COMPAT_TARGETS)}")
    profile = load_profile(target) if target is not None else None
    if recipe is None:
        recipe = profile.preferred_recipe if profile else "fp32"
    rec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    sparsity = prune if prune is not None else rec.prune_sparsity
    if rec.note:
        warnings.append(rec.note)

    src = load_source(source)
    if sparsity is not None and src.keras is None:
        raise UsageError(f"{source}: pruning needs a Keras source (.keras or .h5), not a SavedModel")
    input_shape = src.input_shape()
    pre = _resolve_preprocessing(preprocessing, input_shape, normalize) if input_shape else None

    def load(data, what):
        if data is None:
            return None
        if input_shape is None:
            raise UsageError(f"{what} data needs a single-input model; this model's input is not one tensor")
        return load_dataset(data, input_shape=input_shape, preprocessing=pre, what=what)

    calib, evald, traind = load(calibration, "calibration"), load(eval_data, "eval"), load(train_data, "training")
    if calib is not None:
        if len(calib) < MIN_CALIBRATION:
            warnings.append(f"only {len(calib)} calibration samples; use at least {MIN_CALIBRATION} "
                            "for stable quantization ranges and OOD statistics")
        if len(calib) > MAX_CALIBRATION:
            calib = Dataset(calib.x[:MAX_CALIBRATION], None, calib.labels, calib.source)

    if debug and calib is None:  # before converting: nothing is written for a command that cannot finish
        raise DataError("--debug needs --calibration data (100-500 typical inputs) to quantize and compare layers")
    pruning = None
    if sparsity is not None:
        train = (traind.x, traind.y) if traind is not None else None
        if train is None:
            warnings.append("pruned without fine-tuning; pass --train data (x, y) to recover accuracy")
        pruning = prune_model(src.keras, float(sparsity), train, epochs=fine_tune_epochs)
    elif traind is not None:
        warnings.append("--train data is only used for pruning; ignored")

    data = to_tflite(src, rec, calib.x if calib is not None else None, sparse=sparsity is not None,
                     compat=compat, select_tf_ops=select_tf_ops, quiet=quiet, denylist=denylist)
    try:
        with captured():  # the interpreter's C++ log line ("Created XNNPACK delegate") is noise here
            interp = make_interpreter(data)
    except ModelLoadError as err:
        if not select_tf_ops:
            raise ModelLoadError(f"the converted model does not load: {err}") from None
        # TensorFlow ops need the Flex delegate, which no pip interpreter here links in:
        # read the I/O from the flatbuffer and say plainly that nothing here could run it.
        interp = None
        warnings.append(f"the model needs TensorFlow ops ({', '.join(custom_ops(data)) or 'Flex'}): "
                        "the device needs the Flex delegate; edgekit could not run it here, "
                        "so the accuracy check was skipped")
    inputs, outputs = tensor_specs(interp) if interp is not None else io_specs(data)

    accuracy = None
    if evald is not None and interp is not None:
        accuracy = accuracy_check(src, interp, evald.x, evald.y, quiet=quiet)
    task = "unknown"
    if accuracy is not None:
        task = "classification" if "agreement" in accuracy else "regression"
    elif len(outputs[0].shape) == 2 and outputs[0].shape[-1] > 1 and labels is not None:
        task = "classification"

    fp = src.fingerprint()
    zlib_bytes = len(zlib.compress(data, 9))
    manifest = Manifest(
        model={"file": output.name, "sha256": sha256_bytes(data), "size_bytes": len(data),
               "size_zlib_bytes": zlib_bytes,
               "xnnpack": bool(getattr(interp, "edgekit_default_delegates", True)),
               "custom_ops": custom_ops(data)},
        inputs=inputs,
        outputs=outputs,
        source=fp,
        recipe={**rec.to_dict(), **({"float_layers": list(denylist)} if denylist else {})},
        target=profile.name if profile else None,
        compat=compat,
        pruning=pruning,
        tools=_tool_versions(),
        task=task,
        preprocessing=pre,
        labels=_labels(labels, [evald, calib]),
        calibration=_calibration(calib, inputs),
        accuracy=accuracy,
        sizes={"source_bytes": fp["size_bytes"],
               "float32_weights_bytes": 4 * fp["params"] if fp["params"] else None,
               "tflite_bytes": len(data), "tflite_zlib_bytes": zlib_bytes},
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    atomic_write_bytes(output, data)
    mpath = manifest.save(output)
    report = None
    if debug:
        from .debug import debug_layers

        report = debug_layers(src, calib.x if calib is not None else None,
                              eval_x=evald.x if evald is not None else None, recipe=rec, compat=compat)
    return ConvertResult(output, mpath, manifest, time.perf_counter() - t0, warnings, debug=report)


def _calibration(calib: Dataset | None, inputs) -> dict[str, Any] | None:
    if calib is None:
        return None
    return {"samples": len(calib), "source": calib.source,
            "inputs": {inputs[0].name: compute_input_stats(calib.x)}}
