"""``edgekit.adopt``: a manifest for a .tflite or .onnx edgekit did not make (a published model, a PyTorch export,
another team's file).

The file is read, never changed: sha256 and I/O specs come from it; calibration statistics and the
OOD reference per input, the pixel scaling (decided from evidence: edgekit.scaling) and, with labelled
eval data, the file's accuracy come from the data given. Provenance says it was adopted, from where,
with its sha256. Everything downstream (EdgeModel, run, deploy, audit, profile) then treats it as a
converted model. No TensorFlow is imported.

Example:
    >>> r = adopt("face_detection.tflite", calibration="crops.npy")        # doctest: +SKIP
    >>> r.manifest.preprocessing["input"].offset, r.manifest.provenance.adopted.sha256[:8]   # doctest: +SKIP
    (-1.0, 'bbff11ce')
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .conversion.evaluate import compare_outputs, is_classifier, run_tflite_named
from .conversion.pipeline import (
    MAX_CALIBRATION, MIN_CALIBRATION, _calibration, _labels, _load, _provenance, scaled_calibration,
)
from .conversion.sampling import draw
from .conversion.tf import captured
from .errors import DataError, ModelLoadError, UsageError
from .engine import open_model
from .engine.tflite_file import custom_ops
from .fsutil import read_bytes, sha256_bytes
from .manifest import TASKS, Accuracy, Adoption, Manifest, ModelFile, Sizes, manifest_path_for
from .scaling import preset_of, quant_evidence


@dataclass
class AdoptResult:
    """What ``adopt`` wrote: the manifest and where, and what the user should know."""

    model: Path
    manifest_path: Path
    manifest: Manifest
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def table(self) -> str:
        m = self.manifest
        rows = [("model", str(self.model)), ("manifest", str(self.manifest_path)), ("sha256", m.model.sha256),
                ("inputs", ", ".join(f"{t.name} {list(t.shape)} {t.dtype}" for t in m.inputs)),
                ("outputs", ", ".join(f"{t.name} {list(t.shape)} {t.dtype}" for t in m.outputs)),
                ("task", m.task),
                ("preprocessing", ", ".join(f"{k}: {preset_of(p) or 'custom'} (pixel x {p.scale:.4g} {p.offset:+g})"
                                            for k, p in m.preprocessing.items()) or "none (numbers are fed as they are)"),
                ("calibration", f"{m.calibration.samples} samples from {m.calibration.source}")]
        if m.accuracy is not None:
            acc = m.accuracy.output()
            if acc.top1_converted is not None:
                rows.append(("top-1 on eval", f"{acc.top1_converted:.3f} ({m.accuracy.samples} samples)"))
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v}" for k, v in rows]
        return "\n".join(lines + [f"warning: {w}" for w in self.warnings])


def adopt(
    model: str | Path,
    *,
    calibration: Any,
    eval_data: Any = None,
    labels: Sequence[str] | str | Path | None = None,
    normalize: str | None = None,
    task: str | None = None,
    origin: str | None = None,
    calibration_seed: int = 0,
    force: bool = False,
) -> AdoptResult:
    """Write the version 2 manifest next to ``model`` (a .tflite or .onnx edgekit did not make).

    calibration / eval_data: as for convert (.npy/.npz, an image folder, an array, or per input
    name for a model with several inputs). ``normalize``: the pixel scaling of image inputs;
    None picks it from the evidence (numeric calibration data, quantized inputs), and with no
    evidence at all (image files into a float input) asks for it. ``task``: classification,
    regression or unknown (default: from the eval data and labels). ``origin``: where the file
    came from, recorded in the provenance. An existing manifest is replaced only with ``force``.
    """
    t0 = time.perf_counter()
    warnings: list[str] = []
    model = Path(model)
    if model.suffix not in (".tflite", ".onnx"):
        raise UsageError(f"{model}: adopt takes a .tflite or .onnx file")
    if task is not None and task not in TASKS:
        raise UsageError(f"--task {task!r}: choose one of {', '.join(TASKS)}")
    mpath = manifest_path_for(model)
    if mpath.exists() and not force:
        raise UsageError(f"{mpath}: already exists; pass --force to replace it")
    if calibration is None:
        raise DataError("adopt needs --calibration data (100-500 typical inputs) for the guard's statistics")
    data = read_bytes(model, ModelLoadError, "model file")
    with captured():  # the interpreter's C++ log line is noise here
        # A file edgekit did not make: the safe door (structure check, then the crash probe).
        session = open_model(data, label=str(model))
    inputs, outputs = session.inputs, session.outputs
    shapes = {t.name: t.sample_shape for t in inputs}
    quant = [ev for t in inputs if (ev := quant_evidence(t.name, t.dtype, t.scale, t.zero_point))]
    images = [n for n, p in _image_folders(calibration, shapes)]
    if normalize is None and images and not quant:
        raise DataError(f"{calibration if len(shapes) == 1 else images[0]}: image files into a float input show "
                        "nothing of how the model scales pixels; pass --normalize 0-1, -1-1, imagenet or raw")
    pre, calib = scaled_calibration(None, normalize, shapes, calibration, quant=quant, warnings=warnings)
    evald = _load(eval_data, shapes, pre, "eval")
    available = len(calib)
    if available < MIN_CALIBRATION:
        warnings.append(f"only {available} calibration samples; use at least {MIN_CALIBRATION} for stable "
                        "OOD statistics")
    calib, class_counts = draw(calib, limit=MAX_CALIBRATION, seed=calibration_seed)

    outputs = _observed_layouts(session, calib, shapes, warnings)
    accuracy = _accuracy(session, evald) if evald is not None else None
    label_list = _labels(labels, [evald, calib])
    if task is None:
        task = accuracy.outputs[0].task if accuracy is not None else (
            "classification" if label_list and len(outputs[0].shape) == 2 and outputs[0].shape[-1] > 1 else "unknown")
    sha = sha256_bytes(data)
    manifest = Manifest(
        model=ModelFile(file=model.name, sha256=sha, size_bytes=len(data), size_zlib_bytes=len(zlib.compress(data, 9)),
                        xnnpack=session.default_delegates,
                        custom_ops=tuple(custom_ops(data)) if model.suffix == ".tflite" else ()),
        inputs=tuple(inputs), outputs=tuple(outputs),
        provenance=_provenance(adopted=Adoption(file=str(model.resolve()), sha256=sha, origin=origin)),
        task=task, labels=tuple(label_list) if label_list else None, preprocessing=pre,
        calibration=_calibration(calib, shapes, inputs, calibration_seed, available, class_counts),
        accuracy=accuracy,
        sizes=Sizes(source_bytes=len(data), tflite_bytes=len(data), tflite_zlib_bytes=len(zlib.compress(data, 9))),
    )
    saved = manifest.save(model)
    return AdoptResult(model, saved, manifest, time.perf_counter() - t0, warnings)


def _observed_layouts(session, calib, shapes: dict, warnings: list[str]) -> list:
    """The outputs with their batch axis as the calibration data shows it, for a model with an input
    not batched on its first axis (a state, a scalar) or an output whose shape the file leaves open:
    run on one sample and on two, see which axis grew (runtime/layout.py)."""
    import dataclasses

    from .errors import InferenceError
    from .runtime.layout import observed_output_axes

    outputs = list(session.outputs)
    doubt = [o for o in outputs if len(o.shape) >= 2 and all(d < 0 for d in o.shape)]
    if len(calib) < 2 or not (doubt or any(t.role != "data" for t in session.inputs)):
        return outputs
    try:
        axes = observed_output_axes(session, calib.arrays(list(shapes)))
    except InferenceError as err:
        warnings.append(f"could not run two calibration samples to see the outputs' batch axes ({err}); "
                        "kept the file's shapes")
        return outputs
    return [dataclasses.replace(o, batch_axis=a) for o, a in zip(outputs, axes)]


def _image_folders(data, shapes: dict) -> list[tuple[str, Path]]:
    """(input name, folder) for each input whose data is a folder of image files."""
    given = data if isinstance(data, dict) else {next(iter(shapes)): data} if len(shapes) == 1 else {}
    return [(n, Path(v)) for n, v in given.items() if isinstance(v, (str, Path)) and Path(v).is_dir()]


def _accuracy(session, evald) -> Accuracy:
    """The file's own figures on the eval data: it is its own reference (errors 0, agreement 1), so
    top-1 against the labels is what it scores; labels go to the first classifier output."""
    out = run_tflite_named(session, evald.x)
    first = next((k for k, v in out.items() if is_classifier(v)), None)
    entries = []
    for name, y in out.items():
        labels = (evald.targets or {}).get(name, evald.y if name == first else None)
        entries.append(compare_outputs(y, y, labels if is_classifier(y) else None, name))
    return Accuracy(samples=len(evald), outputs=tuple(entries), labelled=any(e.top1_source is not None for e in entries))
