"""The two models an audit compares: the Keras source (TensorFlow) and the converted file behind EdgeModel.

The converted model always runs through the real runtime (edgekit.runtime.EdgeModel with
the default Policy), so the audit measures what ships: coercion, quantization, the
interpreter and the guard's verdicts. The source runs in Keras, which the attacks need
for gradients anyway.

Example:
    >>> pair = ModelPair.load("digits-int8.tflite", "digits.keras")   # doctest: +SKIP
    >>> pair.source_scores(x).shape, pair.converted(x).flagged.mean()  # doctest: +SKIP
    ((450, 10), 0.002)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, UsageError
from ..runtime import EdgeModel, Policy

CHUNK = 1024  # under Policy.max_batch, and small enough for big images


@dataclass
class Outcome:
    """The converted model's answer to a batch: float outputs and the guard's per-sample verdicts."""

    scores: np.ndarray  # (N, classes), the first output
    ood_score: np.ndarray | None  # the input-side score, None without calibration statistics
    flagged: np.ndarray  # (N,) bool: any guard check flagged the sample

    @property
    def top1(self) -> np.ndarray:
        return self.scores.argmax(axis=1)


class ModelPair:
    """Source (Keras) and converted (EdgeModel) model of one audit."""

    def __init__(self, edge: EdgeModel, source: Any, source_path: Path):
        self.edge = edge
        self.keras = source
        self.source_path = source_path
        self.manifest = edge.manifest
        self.sample_shape = tuple(int(d) for d in edge.runner.sample_shape)
        spec = edge.manifest.match(edge.runner.input) if edge.manifest is not None else None
        self.input_name = spec.name if spec is not None else edge.runner.input.name

    @classmethod
    def load(cls, model: str | Path, source: str | Path) -> "ModelPair":
        from ..conversion.loader import load_source

        from ..conversion.tf import captured

        with captured():  # the interpreter's C++ log line ("Created XNNPACK delegate") is noise here
            edge = EdgeModel.load(model, policy=Policy())
        if edge.manifest is None:
            raise UsageError(f"{model}: no manifest next to it; the audit reads the model contract: "
                             "convert the model with edgekit convert")
        out0 = edge.runner.outputs[0]
        if len(out0.shape) != 2 or out0.shape[-1] < 2:
            raise UsageError(f"{model}: output shape {out0.shape} is not (batch, classes); "
                             "the audit covers classifiers only")
        src = load_source(source)
        if src.keras is None:
            raise UsageError(f"{source}: the audit needs a Keras source (.keras or .h5) for its gradients, "
                             "not a SavedModel folder")
        want = tuple(-1 if d is None else int(d) for d in src.keras.inputs[0].shape[1:])
        pair = cls(edge, src.keras, Path(source))
        if len(want) != len(pair.sample_shape) or any(w not in (-1, g) for w, g in zip(want, pair.sample_shape)):
            raise UsageError(f"{source}: input {want} does not match {model}'s {pair.sample_shape}; "
                             "pass the model it was converted from")
        return pair

    def source_scores(self, x: np.ndarray, batch: int = 256) -> np.ndarray:
        """The Keras model's first output on x, float32 (N, classes)."""
        outs = []
        for s in range(0, len(x), batch):
            y = self.keras(x[s:s + batch], training=False)
            y = y[0] if isinstance(y, (list, tuple)) else y
            outs.append(np.asarray(y, np.float32).reshape(min(batch, len(x) - s), -1))
        return np.concatenate(outs)

    def converted(self, x: np.ndarray) -> Outcome:
        """Run x through EdgeModel in chunks; outputs and verdicts joined."""
        if len(x) == 0:
            raise DataError("no samples to run")
        parts = [self.edge.predict(x[s:s + CHUNK]) for s in range(0, len(x), CHUNK)]
        scores = np.concatenate([p.outputs[0].reshape(p.n, -1) for p in parts]).astype(np.float32)
        ood = [p.ood_score for p in parts]
        ood_score = None if any(o is None for o in ood) else np.concatenate(ood).astype(np.float64)
        return Outcome(scores, ood_score, np.concatenate([p.flagged for p in parts]))

    def close(self) -> None:
        self.edge.close()
