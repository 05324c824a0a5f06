"""The accuracy check: source model against converted model on the same eval data.

For every output: max and mean absolute error and SQNR in dB (signal-to-quantization-
noise ratio: 10*log10(sum(ref^2) / sum((ref - out)^2)); higher is better, infinity when
identical). For classifiers with labels: top-1 of both and how often they agree.

Example:
    >>> acc = accuracy_check(source, tflite_bytes, x_test, y_test)   # doctest: +SKIP
    >>> acc["top1_source"], acc["top1_converted"], acc["agreement"]    # doctest: +SKIP
    (0.978, 0.976, 0.993)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..engine.tflite import open_trusted
from ..manifest import Accuracy, OutputAccuracy
from ..progress import Progress
from ..quant import Dequantizer, Quantizer
from .loader import Source
from .tf import captured

BATCH = 64


def run_tflite(model, x: np.ndarray, *, quiet: bool = True) -> np.ndarray:
    """The first output of a single-input .tflite over x (N, ...), float out (see run_tflite_named)."""
    return next(iter(run_tflite_named(model, x, quiet=quiet).values()))


def run_tflite_named(model, x: np.ndarray | dict[str, np.ndarray], *, quiet: bool = True) -> dict[str, np.ndarray]:
    """Run a .tflite over every sample in batches: {output name: float array (N, ...)}, in output order.

    ``model``: .tflite bytes or path, or an engine session (reused as is).
    ``x``: one array for a single-input model, else {input name: array} (names as in the manifest:
    the serving signature's, i.e. the Keras input names). Inputs are matched by name, never by position.
    """
    if isinstance(model, (bytes, str, Path)):
        with captured():
            session = open_trusted(model)
    else:
        session = model
    ins, outs = session.inputs, session.outputs
    if not isinstance(x, dict):
        if len(ins) != 1:
            raise ValueError(f"the model has {len(ins)} inputs; pass {{name: array}} for {[t.name for t in ins]}")
        x = {ins[0].name: x}
    n = len(next(iter(x.values())))
    fixed = any(t.shape and t.shape[0] != -1 for t in ins)
    batch = 1 if fixed else BATCH
    results: dict[str, list[np.ndarray]] = {o.name: [] for o in outs}
    quantize = {t.name: Quantizer(t.scale, t.zero_point, t.dtype) for t in ins if t.dtype != "float32" and t.quantized}
    dequantize = {o.name: Dequantizer(o.scale, o.zero_point, o.dtype) for o in outs if o.quantized}
    with Progress("evaluating", total=n, enabled=False if quiet else None) as bar:
        current = None
        for start in range(0, n, batch):
            size = min(batch, n - start)
            if size != current:
                session.resize([[size, *x[t.name].shape[1:]] for t in ins])
                current = size
            feeds = []
            for t in ins:
                chunk = x[t.name][start : start + size]
                feeds.append(quantize[t.name](np.asarray(chunk, np.float32)) if t.name in quantize
                             else chunk.astype(t.dtype))
            for o, y in zip(outs, session.run(feeds)):
                results[o.name].append(dequantize[o.name](y) if o.name in dequantize else y.astype(np.float32))
            bar.advance(size)
    return {k: np.concatenate(v) for k, v in results.items()}


def run_source(source: Source, x: np.ndarray) -> np.ndarray:
    """The first output of the source model on x."""
    return next(iter(run_source_named(source, x).values()))


def run_source_named(source: Source, x: np.ndarray | dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The source model on x: {output name: float array}, names as ``source.output_names()``."""
    if source.session is not None:  # an .onnx source: its float model on ONNX Runtime
        return run_tflite_named(source.session, x)
    names = source.output_names()
    with captured():
        if source.keras is not None:
            y = source.keras.predict(x, batch_size=BATCH, verbose=0)
        else:
            from .tf import import_tf

            tf = import_tf()
            fn = source.saved_model.signatures["serving_default"]
            n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
            if isinstance(x, dict):
                outs = [fn(**{k: tf.constant(v[i : i + BATCH]) for k, v in x.items()}) for i in range(0, n, BATCH)]
            else:
                outs = [fn(tf.constant(x[i : i + BATCH])) for i in range(0, n, BATCH)]
            y = {k: np.concatenate([o[k].numpy() for o in outs]) for k in names}
    if isinstance(y, dict):
        return {k: np.asarray(y[k], np.float32) for k in names}
    if not isinstance(y, (list, tuple)):
        y = [y]
    return {k: np.asarray(v, np.float32) for k, v in zip(names, y)}


def is_classifier(y_pred: np.ndarray) -> bool:
    """Rank-2 output with more than one column that looks like scores per class."""
    return y_pred.ndim == 2 and y_pred.shape[1] > 1


def compare_outputs(ref: np.ndarray, out: np.ndarray, y: np.ndarray | None, name: str = "output_0", *,
                    original: np.ndarray | None = None) -> OutputAccuracy:
    """One output's figures: errors and SQNR, and for classifiers top-1 agreement and, with labels
    ``y``, top-1 of the original source (``original``: its outputs, when pruning changed the
    model that was converted), of the converted model's source and of the converted file."""
    err = out.astype(np.float64) - ref.astype(np.float64)
    noise = float(np.sum(err**2))
    signal = float(np.sum(ref.astype(np.float64) ** 2))
    sqnr = math.inf if noise == 0 else 10 * math.log10(signal / noise) if signal > 0 else -math.inf
    figures: dict[str, Any] = dict(
        name=name, max_abs_error=float(np.max(np.abs(err))), mean_abs_error=float(np.mean(np.abs(err))),
        sqnr_db=sqnr if math.isfinite(sqnr) else None,  # JSON has no infinity; None = identical
        task="classification" if is_classifier(ref) else "regression")
    if is_classifier(ref):
        a, b = ref.argmax(1), out.argmax(1)
        figures["agreement"] = float(np.mean(a == b))
        if y is not None:
            labels = y.argmax(1) if y.ndim == 2 else y.astype(np.int64)
            src = float(np.mean(a == labels))
            conv = float(np.mean(b == labels))
            orig = src if original is None else float(np.mean(original.argmax(1) == labels))
            figures.update(top1_original=orig, top1_source=src, top1_converted=conv,
                           pruning_delta_points=100.0 * (src - orig), conversion_delta_points=100.0 * (conv - src),
                           top1_delta_points=100.0 * (conv - orig))
    return OutputAccuracy(**figures)


def accuracy_check(source: Source, model, x, y: np.ndarray | None, quiet: bool = True, *,
                   original: dict[str, np.ndarray] | None = None,
                   targets: dict[str, np.ndarray] | None = None) -> Accuracy:
    """Source against converted model on the same samples, output by output, matched by name.

    ``y``: labels of the first classifier output (``targets`` per output name win over it);
    ``original``: the unpruned source's outputs when pruning changed the model that was converted.
    With one output on each side the two are the same output whatever their names.
    """
    ref = run_source_named(source, x)
    out = run_tflite_named(model, x, quiet=quiet)
    pairs = _pair_outputs(list(ref), list(out))
    entries = []
    first_classifier = next((k for k in ref if is_classifier(ref[k])), None)
    for src_name, tfl_name in pairs:
        labels = (targets or {}).get(tfl_name, (targets or {}).get(src_name))
        if labels is None and src_name == first_classifier:
            labels = y
        orig = None if original is None else original.get(src_name)
        entries.append(compare_outputs(ref[src_name], out[tfl_name], labels if is_classifier(ref[src_name]) else None,
                                       tfl_name, original=orig))
    labelled = any(e.top1_source is not None for e in entries)
    return Accuracy(samples=int(len(next(iter(x.values())) if isinstance(x, dict) else x)),
                    outputs=tuple(entries), labelled=labelled)


def _pair_outputs(source_names: list[str], tflite_names: list[str]) -> list[tuple[str, str]]:
    if len(source_names) == 1 and len(tflite_names) == 1:
        return [(source_names[0], tflite_names[0])]
    missing = [n for n in source_names if n not in tflite_names]
    if missing:
        from ..errors import ConversionError

        raise ConversionError(f"the converted model's outputs {tflite_names} do not name the source's {missing}; "
                              "the accuracy check matches outputs by name")
    return [(n, n) for n in source_names]
