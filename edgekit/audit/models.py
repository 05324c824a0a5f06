"""The two models an audit compares: the Keras source (optional, TensorFlow in a child process) and the
converted file behind EdgeModel.

The converted model always runs through the real runtime (edgekit.runtime.EdgeModel with
the default Policy), so the audit measures what ships: coercion, quantization, the
interpreter and the guard's verdicts. The source, when given, runs in Keras in a child
process (source_worker.py), so a TensorFlow crash costs a stage, not the audit.

Example:
    >>> pair = ModelPair.load("digits-int8.tflite", "digits.keras")   # doctest: +SKIP
    >>> pair.source_scores(x, "reference").shape, pair.converted(x).flagged.mean()  # doctest: +SKIP
    ((450, 10), 0.002)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from ..runtime import EdgeModel, Policy
from .source_worker import SourceWorker, StageCrashed

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

    def __init__(self, edge: EdgeModel, source: SourceWorker | None, source_path: Path | None):
        self.edge = edge
        self.source = source  # None: no source given, or its process could not load it
        self.source_path = source_path
        self.source_failure: StageCrashed | None = None
        self.manifest = edge.manifest
        self.sample_shape = tuple(int(d) for d in edge.runner.sample_shape)
        spec = edge.manifest.match(edge.runner.input) if edge.manifest is not None else None
        self.input_name = spec.name if spec is not None else edge.runner.input.name

    @classmethod
    def load(cls, model: str | Path, source: str | Path | None = None) -> "ModelPair":
        """The converted model here; the Keras source (optional) in its own process (source_worker.py)."""
        from ..conversion.tf import captured

        with captured():  # the interpreter's C++ log line ("Created XNNPACK delegate") is noise here
            edge = EdgeModel.load(model, policy=Policy())
        if edge.manifest is None:
            raise UsageError(f"{model}: no manifest next to it; the audit reads the model contract: "
                             "convert the model with edgekit convert (or edgekit adopt a published file)")
        out0 = edge.runner.outputs[0]
        if len(out0.shape) != 2 or out0.shape[-1] < 2:
            raise UsageError(f"{model}: output shape {out0.shape} is not (batch, classes); "
                             "the audit covers classifiers only")
        pair = cls(edge, None, None if source is None else Path(source))
        if source is None:
            return pair
        worker = SourceWorker(source)
        try:
            worker.start("load")
        except StageCrashed as err:  # the audit goes on without the source, and says so
            pair.source_failure = err
            return pair
        except BaseException:
            edge.close()
            raise
        want = worker.input_shape
        pair.source = worker
        if len(want) != len(pair.sample_shape) or any(w not in (-1, g) for w, g in zip(want, pair.sample_shape)):
            pair.close()
            raise UsageError(f"{source}: input {want} does not match {model}'s {pair.sample_shape}; "
                             "pass the model it was converted from")
        return pair

    def source_scores(self, x: np.ndarray, stage: str) -> np.ndarray:
        """The Keras model's first output on x, float32 (N, classes), computed in the source's process."""
        return self.source.call(stage, "scores", x)

    def attack(self, stage: str, name: str, *args, **kw) -> np.ndarray:
        """A white-box attack (attacks.ATTACKS) on the source, run in the source's process."""
        return self.source.call(stage, name, *args, **kw)

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
        if self.source is not None:
            self.source.close()
        self.edge.close()
