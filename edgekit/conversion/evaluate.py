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

from ..backends import make_interpreter
from ..manifest import Accuracy, OutputAccuracy, tensor_specs
from ..progress import Progress
from ..quant import Dequantizer, Quantizer
from .loader import Source
from .tf import captured

BATCH = 64


def run_tflite(model, x: np.ndarray, *, quiet: bool = True) -> np.ndarray:
    """Run the first output of a single-input .tflite over x (N, ...) in batches, float out.

    ``model``: .tflite bytes or path, or an interpreter from make_interpreter (reused as is).
    """
    if isinstance(model, (bytes, str, Path)):
        with captured():
            interp = make_interpreter(model)
    else:
        interp = model
    (inp,), outs = tensor_specs(interp)
    out = outs[0]
    results = []
    batch = BATCH if inp.shape[0] == -1 else 1
    quantize = Quantizer(inp.scale, inp.zero_point, inp.dtype) if inp.dtype != "float32" and inp.quantized else None
    dequantize = Dequantizer(out.scale, out.zero_point, out.dtype) if out.quantized else None
    with Progress("evaluating", total=len(x), enabled=False if quiet else None) as bar:
        current = None
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch]
            if chunk.shape[0] != current:
                interp.resize_tensor_input(inp.index, list(chunk.shape))
                interp.allocate_tensors()
                current = chunk.shape[0]
            feed = quantize(chunk) if quantize is not None else chunk.astype(inp.dtype)
            interp.set_tensor(inp.index, feed)
            interp.invoke()
            y = interp.get_tensor(out.index)
            results.append(dequantize(y) if dequantize is not None else y.astype(np.float32))
            bar.advance(len(chunk))
    return np.concatenate(results)


def run_source(source: Source, x: np.ndarray) -> np.ndarray:
    with captured():
        if source.keras is not None:
            y = source.keras.predict(x, batch_size=BATCH, verbose=0)
        else:
            from .tf import import_tf

            tf = import_tf()
            fn = source.saved_model.signatures["serving_default"]
            outs = [fn(tf.constant(x[i : i + BATCH])) for i in range(0, len(x), BATCH)]
            key = sorted(outs[0].keys())[0]
            y = np.concatenate([o[key].numpy() for o in outs])
    if isinstance(y, (list, tuple)):
        y = y[0]
    return np.asarray(y, np.float32)


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


def accuracy_check(source: Source, model, x: np.ndarray, y: np.ndarray | None, quiet: bool = True, *,
                   name: str = "output_0", original: np.ndarray | None = None) -> Accuracy:
    ref = run_source(source, x)
    out = run_tflite(model, x, quiet=quiet)
    o = compare_outputs(ref, out, y, name, original=original)
    return Accuracy(samples=int(len(x)), outputs=(o,), labelled=y is not None)
