"""``edgekit.convert``: source model -> .tflite + manifest, with pruning and an accuracy check.

Example:
    >>> import edgekit
    >>> r = edgekit.convert("digits.keras", "digits-int8.tflite", recipe="int8",
    ...                     calibration="calib.npz", eval_data="eval.npz")   # doctest: +SKIP
    >>> print(r.table())                                                      # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import platform
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..engine.onnxrt import open_onnx
from ..engine.tflite import open_trusted
from ..data import Dataset, default_preprocessing, load_dataset, load_named
from ..devices import load_profile
from ..errors import ConversionError, DataError, ModelLoadError, SourceModelError, UsageError
from ..engine.tflite_file import custom_ops, io_specs
from ..fsutil import atomic_write_bytes, sha256_bytes
from ..manifest import (
    Adoption, Calibration, Manifest, ModelFile, Preprocessing, Provenance, Pruning, Sizes, manifest_path_for,
)
from ..recipes import Recipe, load_recipe
from ..calibration_stats import compute_input_stats
from .evaluate import accuracy_check, run_source_named
from .loader import load_source
from .prune import prune_model
from .sampling import draw
from .result import ConvertResult
from .tf import captured
from .debug import quantize_with_denylist
from .tflite import COMPAT_TARGETS, to_tflite
from .onnx import check_onnx_options, is_onnx_output, quantize_onnx, to_onnx
from .onnx_debug import debug_nodes, quantize_with_float_nodes

MIN_CALIBRATION = 100
MAX_CALIBRATION = 1000  # more adds time, not accuracy


def _tool_versions(tensorflow: bool = True) -> dict[str, str]:
    import importlib.metadata as md

    out = {"edgekit": __version__, "python": platform.python_version()}
    if tensorflow:  # adopt writes a manifest without TensorFlow: never import it just to name its version
        from .tf import import_tf

        out["tensorflow"] = import_tf().__version__
    for dist in ("keras", "numpy", "ai-edge-litert", "tf2onnx", "onnxruntime"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _check_paths(source: Path, output: Path, force: bool) -> None:
    if output.suffix not in (".tflite", ".onnx"):
        raise UsageError(f"{output}: the output file must end in .tflite (or .onnx for ONNX Runtime)")
    src = source.resolve()
    for p in (output, manifest_path_for(output)):
        if p.resolve() == src or src in p.resolve().parents:
            raise UsageError(f"{p}: would overwrite the source model; choose another output path")
    if output.exists() and not force:
        raise UsageError(f"{output}: already exists; pass --force to replace it")
    if output.is_dir():
        raise UsageError(f"{output}: is a folder; give a file path ending in .tflite")


def _resolve_preprocessing(preprocessing, input_shape: Sequence[int], normalize: str):
    if preprocessing is None:
        return default_preprocessing(input_shape, normalize)
    if isinstance(preprocessing, Preprocessing):
        return preprocessing
    if isinstance(preprocessing, dict):
        return Preprocessing(**preprocessing)
    if preprocessing == "digits":
        from ..digits import PREPROCESSING

        return PREPROCESSING
    if preprocessing == "none":
        return None
    return default_preprocessing(input_shape, normalize)


def _labels(labels, datasets: list[Dataset | None]) -> list[str] | None:
    if isinstance(labels, (str, Path)):
        p = Path(labels)
        if not p.is_file():
            raise DataError(f"{p}: labels file not found (one label per line)")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{p}: labels file is not UTF-8 text (byte {err.start}); save it as UTF-8") from None
        return [ln.strip() for ln in text.splitlines() if ln.strip()]
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
    preprocessing: Any = None,
    normalize: str | None = None,
    calibration_seed: int = 0,
    force: bool = False,
    quiet: bool = False,
    debug: bool = False,
    denylist: Sequence[str] | None = None,
    batch_size: int | None = None,
) -> ConvertResult:
    """Convert a Keras / SavedModel source to TensorFlow Lite (or a Keras / ONNX source to ONNX: an output
    ending in .onnx; see conversion/onnx.py) and write its manifest.

    calibration / eval_data / train_data: a .npy/.npz path, an image folder, an array, or an
    (x, y) tuple; for a model with several inputs, an .npz with one array per input name or a
    dict {input name: array or path}. ``target`` picks the device profile's preferred recipe
    when ``recipe`` is None. ``prune`` (0..1) overrides the recipe's prune_sparsity. More than
    1,000 calibration samples are cut to a seeded random sample (``calibration_seed``),
    stratified by label when the data has labels. Every mistake that can be found before
    pruning, fine-tuning or conversion is raised before any of them starts.
    ``debug``: rank layers by the error int8 quantization adds (result.debug, see debug.py).
    ``denylist``: layers (Keras or tensor names) kept in float in an int8 recipe.
    ``batch_size``: a fixed batch in the input shapes (the Edge TPU and microcontrollers need static shapes).
    ``normalize``: image input scaling (0-1, -1-1, imagenet, raw); checked against calibration data
    given as numbers (DataError when they contradict), picked from it when None (see edgekit.scaling).
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
    denylist = list(denylist or rec.float_layers) or None  # a recipe file may name them too
    sparsity = prune if prune is not None else rec.prune_sparsity
    if sparsity is not None and not 0.0 < float(sparsity) < 1.0:
        raise UsageError(f"--prune must be between 0 and 1 (exclusive), got {sparsity}")
    if batch_size is not None and batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if batch_size is not None and denylist:  # the quantization debugger builds its own converter
        raise UsageError("--batch-size does not combine with --denylist yet; convert with one of them")
    if (debug or denylist) and calibration is None:
        raise DataError(f"--{'debug' if debug else 'denylist'} needs --calibration data (100-500 typical inputs) "
                        "to quantize and compare layers")
    if rec.requires_calibration and calibration is None:
        raise DataError(f"recipe {rec.name!r} quantizes activations and needs --calibration data "
                        "(100-500 typical inputs as .npy/.npz or an image folder)")
    if rec.note and not is_onnx_output(output):
        warnings.append(rec.note)
    if is_onnx_output(output) and rec.onnx is not None and rec.onnx.note and rec.name == "int8":
        warnings.append(rec.onnx.note)  # int8 promises int8 I/O on TFLite; say what ONNX gives instead

    src = load_source(source)
    onnx_out = is_onnx_output(output)
    if onnx_out:
        if sparsity is not None and src.onnx is not None:
            raise UsageError(f"{source}: --prune needs the training model (.keras or .h5; from PyTorch, prune with "
                             "torch.nn.utils.prune before torch.onnx.export): an ONNX graph has no training step "
                             "to win back what pruning costs")
        # a Keras source is pruned in place (prune_model), then exported: the .onnx carries the zeros
        check_onnx_options(src, rec, compat=compat, select_tf_ops=select_tf_ops)
        if denylist and rec.onnx.quantization != "static":
            raise UsageError(f"keeping layers in float needs an int8 recipe (int8, int8-float-io), not {rec.name!r}")
    elif src.onnx is not None:
        raise UsageError(f"{source}: an ONNX source converts to .onnx only (ONNX to .tflite is not supported)")
    if sparsity is not None and src.keras is None:
        raise UsageError(f"{source}: pruning needs a Keras source (.keras or .h5), not a SavedModel")
    shapes = src.input_shapes()
    if (debug or denylist) and src.multi_io and not onnx_out:  # ONNX Runtime's debugger takes several
        raise UsageError("--debug and --denylist take models with one input and one output")
    pre, calib = scaled_calibration(preprocessing, normalize, shapes, calibration, warnings=warnings)
    evald, traind = (_load(d, shapes, pre, what) for d, what in ((eval_data, "eval"), (train_data, "training")))
    if sparsity is not None and traind is not None and traind.y is None:
        raise DataError(f"{traind.source}: pruning fine-tune data needs labels (an .npz with x and y)")
    if sparsity is not None and traind is not None and len(shapes) > 1:
        raise UsageError("fine-tuning after pruning takes single-input models; prune without --train")
    class_counts = available = None
    if calib is not None:
        available = len(calib)
        if available < MIN_CALIBRATION:
            warnings.append(f"only {available} calibration samples; use at least {MIN_CALIBRATION} "
                            "for stable quantization ranges and OOD statistics")
        calib, class_counts = draw(calib, limit=MAX_CALIBRATION, seed=calibration_seed)

    pruning = original = None
    if sparsity is not None:
        if evald is not None:  # the unpruned model's answers, so the table shows what pruning cost
            original = run_source_named(src, evald.x)
        train = (traind.x, traind.y) if traind is not None else None
        if train is None:
            warnings.append("pruned without fine-tuning; pass --train data (x, y) to recover accuracy")
        pruning = prune_model(src.keras, float(sparsity), train, epochs=fine_tune_epochs)
    elif traind is not None:
        warnings.append("--train data is only used for pruning; ignored")

    x_calib = calib.x if calib is not None else None
    if onnx_out:
        float_onnx = src.onnx if src.onnx is not None else to_onnx(src)
        onnx_calib = _onnx_calibration(calib, shapes, float_onnx)
        if denylist:  # int8 with nodes (or a Keras layer's nodes) kept in float: onnx_debug.py
            data = quantize_with_float_nodes(float_onnx, rec.onnx, onnx_calib, denylist, **_layers_of(src))
        else:
            data = quantize_onnx(float_onnx, rec.onnx, onnx_calib)
    elif denylist:  # int8 with layers kept in float: the quantization debugger builds it (debug.py)
        data = quantize_with_denylist(src, x_calib, denylist, recipe=rec, compat=compat, sparse=sparsity is not None)
    else:
        data = to_tflite(src, rec, x_calib, sparse=sparsity is not None, compat=compat,
                         select_tf_ops=select_tf_ops, quiet=quiet, batch_size=batch_size)
    try:
        with captured():  # the interpreter's C++ log line ("Created XNNPACK delegate") is noise here
            session = open_onnx(data) if onnx_out else open_trusted(data)
    except ModelLoadError as err:
        if not select_tf_ops:
            raise ModelLoadError(f"the converted model does not load: {err}") from None
        # TensorFlow ops need the Flex delegate, which no pip interpreter here links in:
        # read the I/O from the flatbuffer and say plainly that nothing here could run it.
        session = None
        warnings.append(f"the model needs TensorFlow ops ({', '.join(custom_ops(data)) or 'Flex'}): "
                        "the device needs the Flex delegate; edgekit could not run it here, "
                        "so the accuracy check was skipped")
    inputs, outputs = (session.inputs, session.outputs) if session is not None else io_specs(data)

    accuracy = None
    if evald is not None and session is not None:
        accuracy = accuracy_check(src, session, evald.x, evald.y, quiet=quiet, original=original,
                                  targets=evald.targets)
    task = "unknown"
    if accuracy is not None:
        task = accuracy.outputs[0].task
    elif len(outputs[0].shape) == 2 and outputs[0].shape[-1] > 1 and labels is not None:
        task = "classification"

    fp = src.fingerprint()
    zlib_bytes = len(zlib.compress(data, 9))
    label_list = _labels(labels, [evald, calib])
    manifest = Manifest(
        model=ModelFile(file=output.name, sha256=sha256_bytes(data), size_bytes=len(data),
                        size_zlib_bytes=zlib_bytes, xnnpack=session.default_delegates if session is not None else True,
                        custom_ops=() if onnx_out else tuple(custom_ops(data))),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        provenance=_provenance(),
        source=fp,
        recipe=dataclasses.replace(rec, float_layers=tuple(denylist or ())),
        target=profile.name if profile else None,
        compat=compat,
        pruning=Pruning(**pruning) if pruning else None,
        task=task,
        preprocessing=_by_tflite_name(pre, shapes, inputs),
        labels=tuple(label_list) if label_list else None,
        calibration=_calibration(calib, shapes, inputs, calibration_seed, available, class_counts),
        accuracy=accuracy,
        # tflite_bytes: the model file's size, .onnx too (schema field names kept: manifests in the field use them)
        sizes=Sizes(source_bytes=fp.size_bytes, tflite_bytes=len(data), tflite_zlib_bytes=zlib_bytes,
                    float32_weights_bytes=4 * fp.params if fp.params else None),
    )
    atomic_write_bytes(output, data)
    mpath = manifest.save(output)
    report = None
    if debug and onnx_out:
        report = debug_nodes(float_onnx, rec.onnx, onnx_calib,
                             _onnx_calibration(evald, shapes, float_onnx) if evald is not None else onnx_calib,
                             **_layers_of(src))
    elif debug:
        from .debug import debug_layers

        report = debug_layers(src, calib.x if calib is not None else None,
                              eval_x=evald.x if evald is not None else None, recipe=rec, compat=compat)
    return ConvertResult(output, mpath, manifest, time.perf_counter() - t0, warnings, debug=report)


def _layers_of(src) -> dict[str, Any]:
    """The Keras layer names ONNX node names are matched to (a Keras source exported to ONNX), else none."""
    if src.keras is None:
        return {}
    from .debug import keras_layer_names

    return {"layer_names": keras_layer_names(src.keras), "model_name": src.keras.name}


def _calibration(calib: Dataset | None, shapes, inputs, seed: int, available, class_counts) -> Calibration | None:
    if calib is None:
        return None
    arrays = calib.arrays(list(shapes))
    specs = {t.name: t for t in inputs}
    stats = {}
    for src_name, name in _tflite_names(shapes, inputs).items():
        t = specs[name]  # a state or a scalar, an integer input, an any-length one: see compute_input_stats
        stats[name] = compute_input_stats(arrays[src_name], seed=seed, role=t.role,
                                          one_channel=t.sample_shape[-1:] == (-1,),
                                          integer=t.dtype.startswith(("int", "uint")) and not t.quantized)
    return Calibration(samples=len(calib), source=calib.source, inputs=stats, seed=seed, available=available,
                       class_counts=class_counts)


def _onnx_calibration(calib: Dataset | None, shapes: dict, model: bytes) -> dict | None:
    """Calibration arrays by the float ONNX model's input names (Keras export may rename an input), in
    each input's dtype (ONNX Runtime refuses float64 for a float32 input)."""
    if calib is None:
        return None
    inputs = open_onnx(model).inputs
    names, dtypes = _tflite_names(shapes, inputs), {t.name: t.dtype for t in inputs}
    return {names[k]: v.astype(dtypes[names[k]], copy=False) for k, v in calib.arrays(list(shapes)).items()}


def _tflite_names(shapes: dict, inputs) -> dict[str, str]:
    """{source input name: converted input name}: by name, or the one to the one."""
    names = [t.name for t in inputs]
    if len(shapes) == 1 and len(names) == 1:
        return {next(iter(shapes)): names[0]}
    missing = [n for n in shapes if n not in names]
    if missing:
        raise ConversionError(f"the converted model's inputs {names} do not name the source's {missing}")
    return {n: n for n in shapes}


def _by_tflite_name(pre: dict, shapes: dict, inputs) -> dict:
    names = _tflite_names(shapes, inputs)
    return {names[k]: v for k, v in pre.items()}


def _input_preprocessing(preprocessing, shapes: dict, normalize: str) -> dict[str, Preprocessing]:
    """{source input name: image preprocessing} for the inputs that are images.

    ``preprocessing``: None (each (H, W, 1|3) input gets ``normalize``), "none", "digits", one
    Preprocessing (or its dict) for a single-input model, or {input name: any of those}.
    """
    if isinstance(preprocessing, dict) and set(preprocessing) <= set(shapes) and len(shapes) > 1:
        per = preprocessing
    else:
        per = {name: preprocessing for name in shapes}
    out = {}
    for name, shape in shapes.items():
        p = _resolve_preprocessing(per.get(name), shape, normalize)
        if p is not None:
            out[name] = p
    return out


def scaled_calibration(preprocessing, normalize: str | None, shapes: dict, calibration, *, quant=(),
                       warnings: list[str] | None = None) -> tuple[dict[str, Preprocessing], Dataset | None]:
    """(image preprocessing per input, calibration data) with the pixel scaling decided from evidence.

    Evidence: calibration data given as numbers, per image input, and ``quant`` (edgekit.scaling
    Evidence of quantized inputs). A declared ``normalize`` that contradicts it raises DataError;
    None picks the preset it fits. With no evidence at all (image files, float inputs) 0-1 is used
    and said in ``warnings``. An explicit ``preprocessing`` is the caller's word and is not second-guessed.
    """
    from ..scaling import data_evidence, decide

    first = normalize or "0-1"
    pre = _input_preprocessing(preprocessing, shapes, first)
    calib = _load(calibration, shapes, pre, "calibration")
    if preprocessing is not None or not pre:
        return pre, calib
    evidence = list(quant)
    if calib is not None:
        arrays = calib.arrays(list(shapes))
        for name in pre:
            if not _from_images(calibration, name):
                where = calib.source if len(shapes) == 1 else f"{calib.source} input {name}"
                evidence.append(data_evidence(f"the calibration data ({where})", arrays[name]))
    chosen = decide(normalize, evidence, fallback="0-1")
    if normalize is None and warnings is not None and (chosen is None or not evidence):
        warnings.append("nothing showed how the image input is scaled; assumed --normalize 0-1 (pass it to be sure)"
                        if chosen else "the calibration numbers fit no --normalize preset; no pixel scaling "
                        "recorded (feed model-ready numbers, or pass --normalize)")
    if chosen is None:
        return {}, calib
    if chosen != first:  # image files must be decoded again with the scaling the numbers showed
        pre = _input_preprocessing(None, shapes, chosen)
        calib = _load(calibration, shapes, pre, "calibration")
    return pre, calib


def _from_images(data, name: str) -> bool:
    """True when this input's data is an image folder (its values come from --normalize, not evidence)."""
    one = data.get(name) if isinstance(data, dict) else data
    return isinstance(one, (str, Path)) and Path(one).is_dir()


def _load(data, shapes: dict, pre: dict, what: str) -> Dataset | None:
    if data is None:
        return None
    if len(shapes) == 1:
        name, shape = next(iter(shapes.items()))
        return load_dataset(data, input_shape=shape, preprocessing=pre.get(name), what=what)
    return load_named(data, input_shapes=shapes, preprocessing=pre, what=what)


def _provenance(adopted: Adoption | None = None) -> Provenance:
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = None
    return Provenance(created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                      tools=_tool_versions(tensorflow=adopted is None), user=user, host=socket.gethostname(),
                      adopted=adopted)
