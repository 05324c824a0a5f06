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
    outputs: list[np.ndarray] | None = None  # every output (N, ...) in EdgeModel.output_names order

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
        # several inputs, by name, in the caller's order (EdgeModel.input_names)
        self.input_shapes = {n: tuple(int(d) for d in edge.runner.inputs[j].sample_shape)
                             for n, j in zip(edge.input_names, edge._in_pos)}
        self.output_names = list(edge.output_names)
        out0 = edge.runner.outputs[0]
        # the classifier audit (top-1 accuracy, gradient attacks, classes, backdoor) needs one input and
        # (batch, classes) scores; any other model is audited by its outputs' deviation (deviation.py)
        self.classifier = len(self.input_shapes) == 1 and len(out0.shape) == 2 and out0.shape[-1] >= 2

    @classmethod
    def load(cls, model: str | Path, source: str | Path | None = None) -> "ModelPair":
        """The converted model here; the Keras source (optional) in its own process (source_worker.py)."""
        from ..conversion.tf import captured

        with captured():  # the interpreter's C++ log line ("Created XNNPACK delegate") is noise here
            edge = EdgeModel.load(model, policy=Policy())
        if edge.manifest is None:
            raise UsageError(f"{model}: no manifest next to it; the audit reads the model contract: "
                             "convert the model with edgekit convert (or edgekit adopt a published file)")
        pair = cls(edge, None, None if source is None else Path(source))
        if source is None or not pair.classifier:  # the source serves the classifier audit's stages only
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

    def converted(self, x: np.ndarray | dict[str, np.ndarray]) -> Outcome:
        """Run x (an array, or one array per input name) through EdgeModel in chunks; outputs and verdicts joined."""
        n = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)
        if n == 0:
            raise DataError("no samples to run")

        def chunk(s):
            return {k: v[s:s + CHUNK] for k, v in x.items()} if isinstance(x, dict) else x[s:s + CHUNK]

        parts = [self.edge.predict(chunk(s)) for s in range(0, n, CHUNK)]
        outputs = [np.concatenate([p.outputs[k] for p in parts]).astype(np.float32)
                   for k in range(len(parts[0].outputs))]
        ood = [p.ood_score for p in parts]
        ood_score = None if any(o is None for o in ood) else np.concatenate(ood).astype(np.float64)
        return Outcome(outputs[0].reshape(n, -1), ood_score, np.concatenate([p.flagged for p in parts]), outputs)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        self.edge.close()
