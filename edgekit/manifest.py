"""The manifest: the typed contract that travels with a converted model (``edgekit.manifest/2``).

It is a JSON sidecar next to the model (``model.tflite`` -> ``model.manifest.json``),
written by ``edgekit convert`` and read by the runtime, the profiler, inspect, check,
audit and the device store. Nothing downstream re-derives what it already says, and
nothing reads it by raw key: every section is a frozen dataclass, parsed and validated
on read. A missing field, a wrong type or an inconsistent value (statistics for an
input the model does not have, a histogram whose sizes disagree) raises ManifestError
naming the file and the field. Version 1 files are read through ``migrate_v1``; writers
write version 2 only. The JSON Schema (``manifest.schema.json`` beside this file) is
generated from these classes (``json_schema()``) and ships in the wheel.

Example:
    >>> m = Manifest.load("digits-int8.tflite")                         # doctest: +SKIP
    >>> m.input("image").dtype, m.input("image").scale                  # doctest: +SKIP
    ('int8', 0.0039215)
    >>> m.calibration.inputs["image"].ood.cell_threshold > 0             # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

from .errors import ManifestError
from .fsutil import atomic_write_text, parse_json, read_bytes
from .recipes import Recipe

SCHEMA = "edgekit.manifest/2"
SCHEMA_V1 = "edgekit.manifest/1"
# Revisions of version 2 add optional fields only. A writer writes the lowest revision that holds what it
# wrote (``revision`` is left out at 0), so a manifest that uses no new field stays readable by older
# readers. A reader refuses an unknown field in a revision it knows (a typo or a damaged file), and skips,
# listing them in ``Manifest.ignored``, the unknown fields of a newer revision: a device that has not been
# upgraded yet keeps serving, with a weaker guard at worst. A field whose loss would make a reader unsafe
# is named in ``requires``; a reader that does not know one of those refuses the manifest.
#   1: ood.reach, ood.colour, provenance.adopted (adopt; the guard's reach and colour features)
REVISION = 1
FEATURES: frozenset[str] = frozenset()  # must-understand features this reader knows (none defined yet)
SUFFIX = ".manifest.json"
MANIFEST_MAX_BYTES = 4 << 20  # 4 MiB: real manifests are ~10 KB; a 100 MB one would take seconds and GBs to refuse
TASKS = ("classification", "regression", "unknown")


def companion_stem(model_path: str | Path) -> str:
    """The name a model's companion files (manifest, signature) start with: ``digits.tflite`` -> ``digits``,
    ``digits.onnx`` -> ``digits.onnx``, so a .tflite and an .onnx of one source can sit side by side."""
    p = Path(model_path)
    return p.name if p.suffix.lower() == ".onnx" or not p.suffix else p.stem


def manifest_path_for(model_path: str | Path) -> Path:
    """``model.tflite`` -> ``model.manifest.json``, ``model.onnx`` -> ``model.onnx.manifest.json`` (same folder)."""
    p = Path(model_path)
    return p.with_name(companion_stem(p) + SUFFIX)


class _Invalid(Exception):
    """A consistency failure inside one section: (field path below the section, message)."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def _is_text(value: str) -> bool:
    """Whether ``value`` can be written as UTF-8 (JSON's "\\ud800" escape gives a str that cannot)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _need(ok: bool, path: str, message: str) -> None:
    if not ok:
        raise _Invalid(path, message)


# ---- the sections --------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorSpec:
    """One model input or output.

    ``name`` is what callers use (the signature key: a Keras input or output name such as
    ``image`` or ``scores``); ``tensor`` is the interpreter's tensor name and ``index`` its index.
    """

    name: str
    index: int
    shape: tuple[int, ...]  # -1 marks a dynamic dimension
    dtype: str  # numpy dtype name: float32, int8, uint8, int16, ...
    scale: Optional[float] = None  # quantization: real = scale * (q - zero_point)
    zero_point: Optional[int] = None
    tensor: Optional[str] = None  # interpreter tensor name, when it differs from name
    # The axis samples are stacked along: 0 for most inputs, 1 for a recurrent state [layers, batch,
    # hidden], None for a value shared by the whole call (a scalar sample rate). See batch_axis_of.
    batch_axis: Optional[int] = 0

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    @property
    def quantized(self) -> bool:
        return self.scale is not None and self.scale != 0.0

    @property
    def tensor_name(self) -> str:
        return self.tensor or self.name

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample's shape: the shape without the batch axis (all of it for a shared value)."""
        k = self.batch_axis
        return self.shape if k is None else self.shape[:k] + self.shape[k + 1:]

    @property
    def role(self) -> str:
        """data, state or shared: see ``role_of``."""
        return role_of(self.batch_axis, len(self.shape))

    def _check(self) -> None:
        _need(all(d >= -1 for d in self.shape), "shape", f"dimensions must be -1 (dynamic) or >= 0, got {self.shape}")
        _need(self.batch_axis is None or 0 <= self.batch_axis < max(1, len(self.shape)), "batch_axis",
              f"must be None or an axis of shape {list(self.shape)}, got {self.batch_axis}")
        _need((self.scale is None) == (self.zero_point is None), "zero_point", "scale and zero_point go together")
        _need(self.scale is None or (math.isfinite(self.scale) and self.scale > 0), "scale",
              f"must be a positive number, got {self.scale}")

    @classmethod
    def from_detail(cls, d: dict[str, Any], name: str | None = None) -> "TensorSpec":
        """From an interpreter's input or output detail entry (a dict: name, index, shape, dtype, quantization)."""
        import numpy as np

        sig = d.get("shape_signature")
        shape = [int(v) for v in (sig if sig is not None and len(sig) else d["shape"])]
        scale, zp = d.get("quantization", (0.0, 0))
        tensor = str(d["name"])
        return cls(name=name or tensor, index=int(d["index"]), shape=tuple(shape), dtype=np.dtype(d["dtype"]).name,
                   scale=float(scale) if scale else None, zero_point=int(zp) if scale else None,
                   tensor=None if name in (None, tensor) else tensor, batch_axis=batch_axis_of(shape))


def role_of(batch_axis: int | None, rank: int) -> str:
    """What a tensor is to the guard: ``data`` (batch-first: checked, OOD-scored, drift-watched),
    ``state`` (batched on another axis, a recurrent state: finite and in range, no OOD score) or
    ``shared`` (no batch axis: one value for the whole call, checked against its calibration values)."""
    if batch_axis is None or rank == 0:
        return "shared"
    return "data" if batch_axis == 0 else "state"


def batch_axis_of(shape) -> int | None:
    """The batch axis a model file's shape shows: None for a scalar (one value for the whole call);
    0 when the shape leads with a dynamic or size-1 axis (the usual [batch, ...]); else the first
    dynamic axis, else the first size-1 one but the last (a recurrent state [layers, batch, hidden]);
    else 0. A last size-1 axis is channels: an image converted with ``--batch-size 2`` is [2, 8, 8, 1].
    Read from the file when there is no better evidence: ``edgekit adopt`` checks outputs by running
    the model on one and on two calibration samples, and the manifest records what it saw.

    Example:
        >>> batch_axis_of([-1, 8, 8, 1]), batch_axis_of([2, -1, 128]), batch_axis_of([2, 8, 8, 1]), batch_axis_of([])
        (0, 1, 0, None)
    """
    shape = [int(d) for d in shape]
    if not shape:
        return None
    if shape[0] in (-1, 1):
        return 0
    if -1 in shape:
        return shape.index(-1)
    return shape.index(1) if 1 in shape[:-1] else 0


@dataclass(frozen=True)
class ModelFile:
    """The .tflite file itself."""

    file: str
    sha256: str
    size_bytes: int
    size_zlib_bytes: Optional[int] = None
    xnnpack: bool = True  # False: it loads only without the default delegates
    custom_ops: tuple[str, ...] = ()

    def _check(self) -> None:
        _need(len(self.sha256) == 64 and all(c in "0123456789abcdef" for c in self.sha256), "sha256",
              "must be 64 lowercase hex digits")
        _need(self.size_bytes > 0, "size_bytes", f"must be positive, got {self.size_bytes}")


@dataclass(frozen=True)
class SourceInfo:
    """The model that was converted."""

    path: str
    format: str  # keras | h5 | saved_model
    sha256: str
    size_bytes: int
    params: Optional[int] = None


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes this input: pixel x scale + offset, then (v - mean) / std, NHWC."""

    height: int
    width: int
    channels: int
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    mean: Optional[tuple[float, ...]] = None
    std: Optional[tuple[float, ...]] = None
    kind: str = "image"
    resize: str = "bilinear"
    layout: str = "NHWC"

    def _check(self) -> None:
        _need(self.kind == "image", "kind", f"must be 'image', got {self.kind!r}")
        _need(self.channels in (1, 3), "channels", f"must be 1 or 3, got {self.channels}")
        _need(self.height > 0 and self.width > 0, "height", "height and width must be positive")
        _need((self.mean is None) == (self.std is None), "std", "mean and std go together")
        if self.mean is not None:
            _need(len(self.mean) == len(self.std) == self.channels, "mean",
                  f"mean and std need one value per channel ({self.channels})")
            _need(all(s > 0 for s in self.std), "std", "must be positive")


@dataclass(frozen=True)
class OODReference:
    """The out-of-distribution reference of one input (see edgekit.calibration_stats).

    The input average-pooled to at most 16 cells per axis ("sketch"): per-cell mean and std;
    per-sample global features (sketch mean, log std and, for pooled inputs, roughness): mean
    and std; thresholds from held-out calibration scores (a score over 1.0 is out of distribution).
    """

    sketch_shape: tuple[int, ...]
    sketch_mean: tuple[float, ...]
    sketch_std: tuple[float, ...]
    global_mean: tuple[float, ...]
    global_std: tuple[float, ...]
    cell_threshold: float
    global_threshold: float
    held_out: int = 0
    log_eps: Optional[float] = None  # None: an old reference with linear std and no roughness
    # (median, bound) of the per-sample minimum, then of the maximum: nearly every calibration sample
    # reaches below the low bound and above the high one (None: an older reference without it)
    reach: Optional[tuple[float, ...]] = field(default=None, metadata={"since": 1})
    # (mean, limit) of the per-sample colour feature (edgekit.calibration_stats._colour): a sample further
    # than limit from mean is out of distribution (None: one channel, or an older reference)
    colour: Optional[tuple[float, ...]] = field(default=None, metadata={"since": 1})

    def _check(self) -> None:
        cells = math.prod(self.sketch_shape)
        _need(len(self.sketch_mean) == cells, "sketch_mean",
              f"has {len(self.sketch_mean)} values but sketch_shape {list(self.sketch_shape)} has {cells} cells")
        _need(len(self.sketch_std) == cells, "sketch_std", f"has {len(self.sketch_std)} values, expected {cells}")
        _need(min(self.sketch_std, default=1.0) > 0, "sketch_std", "must be positive")
        _need(len(self.global_mean) == len(self.global_std) and 2 <= len(self.global_mean) <= 3, "global_std",
              "global_mean and global_std need the same 2 or 3 values")
        _need(all(s > 0 for s in self.global_std), "global_std", "must be positive")
        _need(self.cell_threshold > 0 and self.global_threshold > 0, "cell_threshold", "thresholds must be positive")
        _need(self.reach is None or (len(self.reach) == 4 and self.reach[1] > self.reach[0]
                                     and self.reach[3] < self.reach[2]), "reach",
              "needs 4 values: median and bound of the per-sample minimum (bound above), then of the maximum (below)")
        _need(self.colour is None or (len(self.colour) == 2 and self.colour[1] > 0), "colour",
              "needs 2 values: mean and a positive limit")


@dataclass(frozen=True)
class Bins:
    """Decile bins per channel for PSI drift: ``edges[c]`` and ``reference_share[c]`` (len(edges) + 1)."""

    edges: tuple[tuple[float, ...], ...]
    reference_share: tuple[tuple[float, ...], ...]

    def _check(self) -> None:
        _need(len(self.edges) == len(self.reference_share), "reference_share",
              f"has {len(self.reference_share)} channels but edges has {len(self.edges)}")
        for c, (e, s) in enumerate(zip(self.edges, self.reference_share)):
            _need(len(s) == len(e) + 1, f"reference_share[{c}]",
                  f"has {len(s)} bins but edges[{c}] has {len(e)} edges (needs {len(e) + 1})")
            _need(abs(sum(s) - 1.0) < 1e-3, f"reference_share[{c}]", f"sums to {sum(s):.4f}, not 1")


@dataclass(frozen=True)
class InputStats:
    """What normal input looked like at conversion, per channel (last axis), on the float input."""

    samples: int
    channels: int
    min: tuple[float, ...]
    max: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    quantiles: dict[str, tuple[float, ...]]
    bins: Bins
    ood: Optional[OODReference] = None
    channel_axis: int = -1
    # An integer input seen with few distinct values (a sample rate: 8000, 16000): the values allowed;
    # others are flagged like values out of range.
    values: Optional[tuple[float, ...]] = None

    def _check(self) -> None:
        c = self.channels
        _need(c >= 1, "channels", f"must be at least 1, got {c}")
        for name in ("min", "max", "mean", "std"):
            _need(len(getattr(self, name)) == c, name, f"has {len(getattr(self, name))} values for {c} channels")
        _need(all(lo <= hi for lo, hi in zip(self.min, self.max)), "max", "is below min")
        for q, v in self.quantiles.items():
            _need(len(v) == c, f"quantiles.{q}", f"has {len(v)} values for {c} channels")
        _need(len(self.bins.edges) == c, "bins.edges", f"has {len(self.bins.edges)} channels, expected {c}")


@dataclass(frozen=True)
class Calibration:
    """The calibration sample: how it was drawn, and statistics per input name."""

    samples: int
    source: str
    inputs: dict[str, InputStats]
    seed: Optional[int] = None  # the seeded random sample (None: every sample was used)
    available: Optional[int] = None  # samples offered before sampling
    class_counts: Optional[dict[str, int]] = None  # per label, when the data had labels


@dataclass(frozen=True)
class OutputAccuracy:
    """The accuracy check of one output (matched by name between source and converted model).

    For classifiers with labels: top-1 of the original source, of the model that was converted
    (the pruned one when pruning ran; else equal to the original) and of the converted file.
    """

    name: str
    max_abs_error: float
    mean_abs_error: float
    sqnr_db: Optional[float] = None  # None: identical
    task: str = "unknown"
    agreement: Optional[float] = None  # top-1 agreement of converted with the model it came from
    top1_original: Optional[float] = None
    top1_source: Optional[float] = None
    top1_converted: Optional[float] = None
    pruning_delta_points: Optional[float] = None  # source (pruned) - original
    conversion_delta_points: Optional[float] = None  # converted - source
    top1_delta_points: Optional[float] = None  # converted - original: the whole cost

    def _check(self) -> None:
        _need(self.task in TASKS, "task", f"must be one of {', '.join(TASKS)}, got {self.task!r}")
        for name in ("agreement", "top1_original", "top1_source", "top1_converted"):
            v = getattr(self, name)
            _need(v is None or 0.0 <= v <= 1.0, name, f"must be a share between 0 and 1, got {v}")


@dataclass(frozen=True)
class Accuracy:
    """The accuracy check on the eval data, one entry per output."""

    samples: int
    outputs: tuple[OutputAccuracy, ...]
    labelled: bool = False  # False: agreement with the source is the only reference

    def output(self, name: str | None = None) -> OutputAccuracy:
        """One output's figures (the first classifier, else the first output, when name is None)."""
        if name is None:
            return next((o for o in self.outputs if o.task == "classification"), self.outputs[0])
        for o in self.outputs:
            if o.name == name:
                return o
        raise KeyError(name)


@dataclass(frozen=True)
class Pruning:
    sparsity_target: float
    sparsity_achieved: float
    pruned_kernels: int
    fine_tuned: bool
    fine_tune_epochs: int

    def _check(self) -> None:
        _need(0.0 < self.sparsity_target < 1.0, "sparsity_target", f"must be in (0, 1), got {self.sparsity_target}")
        _need(0.0 <= self.sparsity_achieved <= 1.0, "sparsity_achieved", "must be in [0, 1]")


@dataclass(frozen=True)
class Sizes:
    source_bytes: int
    tflite_bytes: int
    tflite_zlib_bytes: Optional[int] = None
    float32_weights_bytes: Optional[int] = None  # params x 4: the honest baseline for ratios


@dataclass(frozen=True)
class Adoption:
    """A model edgekit did not make, adopted as it was (``edgekit adopt``): the file it was, and from where."""

    file: str
    sha256: str
    origin: Optional[str] = None  # where it came from, as the user said (a package, a URL, a team)

    def _check(self) -> None:
        _need(len(self.sha256) == 64 and all(c in "0123456789abcdef" for c in self.sha256), "sha256",
              "must be 64 lowercase hex digits")


@dataclass(frozen=True)
class Provenance:
    """When, by whom, where and with what the model was converted (or adopted: ``adopted`` is set)."""

    created: str
    tools: dict[str, str] = field(default_factory=dict)
    user: Optional[str] = None
    host: Optional[str] = None
    adopted: Optional[Adoption] = field(default=None, metadata={"since": 1})


@dataclass(frozen=True)
class GuardThresholds:
    """Guard thresholds chosen by ``edgekit audit --write-threshold`` for a target false-positive rate."""

    target_fpr: float
    set_by: str
    ood_threshold: Optional[float] = None  # input-statistics score limit (Policy.ood_threshold)
    output_signal: Optional[str] = None  # msp | energy
    output_threshold: Optional[float] = None  # output-side score limit
    measured_fpr: Optional[float] = None

    def _check(self) -> None:
        _need(0.0 < self.target_fpr < 1.0, "target_fpr", f"must be in (0, 1), got {self.target_fpr}")
        _need(self.output_signal in (None, "msp", "energy"), "output_signal",
              f"must be msp or energy, got {self.output_signal!r}")
        _need((self.output_signal is None) == (self.output_threshold is None), "output_threshold",
              "output_signal and output_threshold go together")


@dataclass(frozen=True)
class CanaryBudgets:
    """What a canary of this model must stay within before the device store promotes it."""

    calls: Optional[int] = None
    minutes: Optional[float] = None
    max_disagreement: Optional[float] = None
    max_error_rate: Optional[float] = None
    max_ood_rate: Optional[float] = None
    max_latency_ms: Optional[float] = None


@dataclass(frozen=True)
class Manifest:
    """Everything edgekit knows about one converted model (see README, "Manifest schema")."""

    model: ModelFile
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    provenance: Provenance
    source: Optional[SourceInfo] = None
    recipe: Optional[Recipe] = None  # the recipe used, defaults filled in (edgekit.recipes)
    target: Optional[str] = None
    compat: Optional[str] = None
    task: str = "unknown"  # of the first output: classification | regression | unknown
    labels: Optional[tuple[str, ...]] = None
    preprocessing: dict[str, Preprocessing] = field(default_factory=dict)  # by input name (image inputs)
    calibration: Optional[Calibration] = None
    accuracy: Optional[Accuracy] = None
    pruning: Optional[Pruning] = None
    sizes: Optional[Sizes] = None
    guard: Optional[GuardThresholds] = None
    canary: Optional[CanaryBudgets] = None
    schema: str = SCHEMA
    revision: int = field(default=0, compare=False, metadata={"since": 1})  # see REVISION; writers fill it in
    requires: tuple[str, ...] = field(default=(), metadata={"since": 1})  # must-understand features

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        object.__setattr__(self, "requires", tuple(self.requires))

    @property
    def ignored(self) -> tuple[str, ...]:
        """Fields of a newer revision this reader skipped (``("calibration.inputs.image.ood.texture",)``)."""
        return getattr(self, "_ignored", ())

    def _check(self) -> None:
        _need(self.schema == SCHEMA, "schema", f"must be {SCHEMA!r}")
        _need(len(self.inputs) >= 1, "inputs", "needs at least one input")
        _need(len(self.outputs) >= 1, "outputs", "needs at least one output")
        _need(self.task in TASKS, "task", f"must be one of {', '.join(TASKS)}, got {self.task!r}")
        for what, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            names = [t.name for t in specs]
            _need(len(set(names)) == len(names), what, f"has duplicate names {names}")
        ins = {t.name: t for t in self.inputs}
        for name, pre in self.preprocessing.items():
            _need(name in ins, f"preprocessing.{name}", f"names no input of the model (inputs: {', '.join(ins)})")
            shape = ins[name].sample_shape
            _need(len(shape) == 3 and shape[-1] in (pre.channels, -1), f"preprocessing.{name}.channels",
                  f"does not fit input shape {list(ins[name].shape)}")
        if self.calibration is not None:
            for name, st in self.calibration.inputs.items():
                _need(name in ins, f"calibration.inputs.{name}",
                      f"names no input of the model (inputs: {', '.join(ins)})")
                shape = ins[name].sample_shape
                # statistics are per last axis (per feature for vectors); one channel for a state or a scalar
                want = 1 if ins[name].role != "data" else shape[-1] if shape else 1
                _need(want in (-1, st.channels), f"calibration.inputs.{name}.channels",
                      f"is {st.channels} but input {name} has shape {list(ins[name].shape)}")
        outs = {t.name for t in self.outputs}
        if self.accuracy is not None:
            for i, o in enumerate(self.accuracy.outputs):
                _need(o.name in outs, f"accuracy.outputs[{i}].name",
                      f"{o.name!r} names no output of the model (outputs: {', '.join(outs)})")
        if self.labels is not None:
            for i, label in enumerate(self.labels):  # a lone surrogate ("\ud800") cannot be printed or saved
                _need(_is_text(label), f"labels[{i}]", f"{ascii(label)} is not valid Unicode text (a lone "
                      "surrogate); fix the label and convert again")
            n = self.outputs[0].shape[-1] if self.outputs[0].shape else -1
            _need(n in (-1, len(self.labels)) or self.task != "classification", "labels",
                  f"has {len(self.labels)} labels but the first output has {n} classes")

    # ---- lookups -------------------------------------------------------------------------------
    def input(self, name: str | None = None) -> TensorSpec:
        """An input by name (the only one when name is None)."""
        return _by_name(self.inputs, name, "input")

    def output(self, name: str | None = None) -> TensorSpec:
        return _by_name(self.outputs, name, "output")

    def match(self, spec: TensorSpec, *, output: bool = False) -> TensorSpec | None:
        """The manifest's entry for an interpreter tensor: by tensor name, else by name.

        Interpreters name tensors ``serving_default_image:0`` and signatures ``image``; a version 1
        manifest knew only the first, so matching on both keeps old files working.
        """
        specs = self.outputs if output else self.inputs
        return (next((t for t in specs if t.tensor_name == spec.tensor_name), None)
                or next((t for t in specs if t.name == spec.name), None))

    def input_stats(self, name: str) -> InputStats | None:
        return None if self.calibration is None else self.calibration.inputs.get(name)

    def preprocessing_for(self, name: str) -> Preprocessing | None:
        return self.preprocessing.get(name)

    def summary(self) -> dict[str, Any]:
        """The few facts a person wants first (inspect, audit and status print these)."""
        acc = self.accuracy.output() if self.accuracy else None
        return {
            "schema": self.schema, "created": self.provenance.created, "sha256": self.model.sha256,
            "recipe": self.recipe.name if self.recipe else None, "target": self.target, "compat": self.compat,
            "task": self.task, "labels": len(self.labels) if self.labels else None,
            "inputs": [t.name for t in self.inputs], "outputs": [t.name for t in self.outputs],
            "calibration_samples": self.calibration.samples if self.calibration else None,
            "top1_converted": acc.top1_converted if acc else None, "agreement": acc.agreement if acc else None,
            "sparsity": self.pruning.sparsity_achieved if self.pruning else None,
            "guard": self.guard is not None,
            "revision": self.revision, "ignored": list(self.ignored),
        }

    # ---- (de)serialisation ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON document, at the lowest revision that holds it (fields new in a revision are left
        out while unset, and ``revision`` is written only when above 0)."""
        body = {k: v for k, v in _plain(self).items() if k not in ("schema", "revision")}
        rev = _revision_used(self)
        return {"schema": self.schema, **({"revision": rev} if rev else {}), **body}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "manifest") -> "Manifest":
        """Parse and validate; a version 1 document is migrated first."""
        if not isinstance(d, dict):
            raise ManifestError(f"{where}: not a JSON object; re-run edgekit convert")
        schema = d.get("schema")
        if schema == SCHEMA_V1:
            d = migrate_v1(d, where=where)
        elif schema != SCHEMA:
            raise ManifestError(f"{where}: schema {schema!r} is not {SCHEMA!r} (or {SCHEMA_V1!r}); "
                                "re-run edgekit convert")
        rev = d.get("revision", 0)
        if isinstance(rev, bool) or not isinstance(rev, int) or rev < 0:
            raise _fail(where, "revision", f"must be a non-negative integer, got {rev!r}")
        needs = d.get("requires", [])
        unknown = [f for f in needs if f not in FEATURES] if isinstance(needs, list) else []
        if unknown:
            raise ManifestError(f"{where}: needs a newer edgekit (revision {rev} requires {', '.join(map(str, unknown))}"
                                f"; this one reads revision {REVISION}); upgrade edgekit on this device")
        ignored: list[str] | None = [] if rev > REVISION else None
        m = _parse(cls, d, where, "", ignored)
        object.__setattr__(m, "_ignored", tuple(sorted(ignored or ())))
        return m

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``path`` (a .manifest.json, or the model path it belongs to)."""
        p = Path(path)
        if not p.name.endswith(SUFFIX):
            p = manifest_path_for(p)
        _validate(self, str(p), "")  # never write what a reader would refuse
        atomic_write_text(p, self.to_json())
        return p

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        """Load from a .manifest.json, or from the model path it sits next to."""
        p = _manifest_file(path)
        return cls.from_bytes(manifest_bytes(p), str(p))

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "manifest") -> "Manifest":
        """Parse manifest bytes already read (and verified: a signature covers exactly these bytes).

        Example: ``Manifest.from_bytes(Path("m.manifest.json").read_bytes(), "m.manifest.json")``
        """
        if len(data) > MANIFEST_MAX_BYTES:
            raise ManifestError(f"{label}: the manifest is {len(data):,} bytes, over the "
                                f"{MANIFEST_MAX_BYTES:,}-byte cap; is it the right file?")
        return cls.from_dict(parse_json(data, label, ManifestError, "manifest"), where=label)

    @classmethod
    def find(cls, model_path: str | Path) -> "Manifest | None":
        """The model's manifest if one sits next to it, else None (a broken one still raises)."""
        p = manifest_path_for(model_path)
        return cls.load(p) if p.exists() else None

    def replace(self, **changes) -> "Manifest":
        """A copy with some sections changed, validated (``m.replace(guard=GuardThresholds(...))``)."""
        new = dataclasses.replace(self, **changes)
        _validate(new, "manifest", "")
        return new


def _manifest_file(path: str | Path) -> Path:
    p = Path(path)
    return p if p.name.endswith(SUFFIX) else manifest_path_for(p)


def manifest_bytes(path: str | Path) -> bytes:
    """A manifest's bytes (from a .manifest.json, or the model path it sits next to), to verify and parse once.

    Example: ``Manifest.from_bytes(manifest_bytes("digits.tflite"), "digits.manifest.json")``
    """
    p = _manifest_file(path)
    if not p.exists():
        raise ManifestError(f"{p}: no manifest next to the model; convert it with edgekit convert")
    return read_bytes(p, ManifestError, "manifest", max_bytes=MANIFEST_MAX_BYTES)


def _by_name(specs, name, what):
    if name is None:
        if len(specs) != 1:
            raise KeyError(f"the model has {len(specs)} {what}s; name one of {', '.join(t.name for t in specs)}")
        return specs[0]
    for t in specs:
        if t.name == name:
            return t
    raise KeyError(f"no {what} named {name!r}; the model has {', '.join(t.name for t in specs)}")


# ---- version 1 -> 2 --------------------------------------------------------------------------------
def migrate_v1(d: dict[str, Any], *, where: str = "manifest") -> dict[str, Any]:
    """A version 1 document as version 2 (the one migration; readers call it, writers never write v1).

    v1 had one preprocessing block for its single input, ``created``/``tools`` at the top level,
    the recipe and sizes as free dictionaries, and accuracy with one unnamed entry per output
    plus classifier figures at the top. Structural problems are left for the v2 validation.
    """
    try:
        out: dict[str, Any] = {k: v for k, v in d.items() if k not in ("created", "tools", "preprocessing",
                                                                     "accuracy", "schema")}
        out["schema"] = SCHEMA
        out["provenance"] = {"created": d.get("created") or "", "tools": d.get("tools") or {}}
        ins = d.get("inputs")
        pre = d.get("preprocessing")
        first = ins[0]["name"] if isinstance(ins, list) and ins and isinstance(ins[0], dict) and "name" in ins[0] else None
        out["preprocessing"] = {first: pre} if pre and first is not None else {}
        if isinstance(out.get("recipe"), dict) and not out["recipe"]:
            out["recipe"] = None
        if isinstance(out.get("source"), dict) and not out["source"]:
            out["source"] = None
        if isinstance(out.get("sizes"), dict) and not out["sizes"]:
            out["sizes"] = None
        acc = d.get("accuracy")
        if isinstance(acc, dict):
            outs = d.get("outputs") if isinstance(d.get("outputs"), list) else []
            entries = []
            for i, o in enumerate(acc.get("outputs", [])):
                name = outs[i]["name"] if i < len(outs) and isinstance(outs[i], dict) else f"output_{i}"
                e = dict(o, name=name)
                if i == 0 and "agreement" in acc:
                    e.update(task="classification", agreement=acc.get("agreement"),
                             top1_source=acc.get("top1_source"), top1_converted=acc.get("top1_converted"),
                             top1_original=acc.get("top1_source"),
                             conversion_delta_points=acc.get("top1_delta_points"),
                             top1_delta_points=acc.get("top1_delta_points"))
                entries.append(e)
            out["accuracy"] = {"samples": acc.get("samples"), "outputs": entries,
                               "labelled": "top1_source" in acc}
        return out  # calibration statistics kept their v1 layout: the v2 parser reads them as they are
    except (TypeError, KeyError, AttributeError, IndexError) as err:
        raise ManifestError(f"{where}: a version 1 manifest too damaged to migrate ({type(err).__name__}); "
                            "re-run edgekit convert") from None


# ---- the typed parser, driven by the dataclass fields ---------------------------------------------
def _hints(cls) -> dict[str, Any]:
    hints = _HINTS.get(cls)  # resolved once per class (get_type_hints is slow; setdefault would call it anyway)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


_HINTS: dict[type, dict[str, Any]] = {}
_NUMBERS = {float, int}


def _fail(where: str, path: str, message: str) -> ManifestError:
    return ManifestError(f"{where}: field {path or '(top level)'}: {message}; re-run edgekit convert")


def _type_name(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin in (tuple, list):
        return "a list"
    if origin is dict:
        return "an object"
    if dataclasses.is_dataclass(hint):
        return "an object"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _kind(hint) -> tuple:
    """How ``_parse`` reads ``hint``, worked out once per hint (typing's introspection costs ~1 us a call
    and a manifest has ~150 fields: a third of its parse)."""
    kind = _KINDS.get(hint)
    if kind is None:
        origin = typing.get_origin(hint)
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(hint)
            inner = [a for a in args if a is not type(None)]
            kind = ("union", type(None) in args, inner[0] if len(inner) == 1 else None)
        elif dataclasses.is_dataclass(hint):
            hints = _hints(hint)
            kind = ("object", hints, [(f.name, *_field_hint(hints[f.name]), f.default is dataclasses.MISSING
                                       and f.default_factory is dataclasses.MISSING, _leaf(hints[f.name]))
                                      for f in fields(hint)])
        elif origin is tuple:
            kind = ("list", typing.get_args(hint)[0])
        elif origin is dict:
            kind = ("dict", typing.get_args(hint)[1])
        else:
            kind = ("leaf",)
        _KINDS[hint] = kind
    return kind


_KINDS: dict[Any, tuple] = {}
_LEAVES = (str, int, bool, float)


def _field_hint(hint) -> tuple[Any, bool]:
    """(the hint a non-null value is parsed as, whether null is allowed): an Optional's inner type
    directly, one ``_parse`` call per field rather than two."""
    kind = _kind(hint)
    if kind[0] == "union" and kind[2] is not None:
        return kind[2], kind[1]
    return hint, False


def _leaf(hint) -> type | None:
    """The plain type a field's value is taken as is when it has exactly that type (a string for a str or
    an Optional[str] field, ...): most fields of a manifest, read without a call of ``_parse`` each."""
    kind = _kind(hint)
    if kind[0] == "union" and kind[2] in _LEAVES:
        return kind[2]
    return hint if hint in _LEAVES else None


def _parse(hint, value, where: str, path: str, ignored: list[str] | None = None):
    """``value`` as ``hint``, validated; unknown fields are errors, or skipped into ``ignored`` when given."""
    kind = _kind(hint)
    tag = kind[0]
    if tag == "union":
        if value is None:
            if kind[1]:
                return None
            raise _fail(where, path, "is null but required")
        return _parse(kind[2] if kind[2] is not None else hint, value, where, path, ignored)
    if tag == "object":
        if not isinstance(value, dict):
            raise _fail(where, path, f"must be an object, got {type(value).__name__}")
        hints = kind[1]
        unknown = sorted(set(value) - set(hints))
        if unknown and ignored is None:
            raise _fail(where, _join(path, unknown[0]), f"unknown field (allowed: {', '.join(hints)})")
        if ignored is not None:
            ignored.extend(_join(path, u) for u in unknown)
        kwargs = {}
        for name, field_hint, nullable, required, leaf in kind[2]:
            if name not in value:
                if required:
                    raise _fail(where, _join(path, name), "is missing")
                continue
            v = value[name]
            # exactly the leaf's type (so not a bool for an int): valid as it is, but for a float's finiteness
            if type(v) is leaf and (leaf is not float or math.isfinite(v)):
                kwargs[name] = v
            elif v is None and nullable:
                kwargs[name] = None
            else:
                kwargs[name] = _parse(field_hint, v, where, _join(path, name), ignored)
        obj = hint(**kwargs)
        _check_one(obj, where, path)
        return obj
    if tag == "list":
        if not isinstance(value, list):
            raise _fail(where, path, f"must be a list, got {type(value).__name__}")
        item = kind[1]
        # The common case (statistics: thousands of numbers): plain numbers whose sum is finite are all finite
        # (a sum that overflows only sends the list to the exact check below). bool is its own type: refused.
        if item is float and set(map(type, value)) <= _NUMBERS and math.isfinite(sum(value)):
            return tuple(map(float, value))
        if item in (str, int) and all(type(v) is item for v in value):  # labels, shapes: valid as they are
            return tuple(value)
        return tuple(_parse(item, v, where, f"{path}[{i}]", ignored) for i, v in enumerate(value))
    if tag == "dict":
        if not isinstance(value, dict):
            raise _fail(where, path, f"must be an object, got {type(value).__name__}")
        vt = kind[1]
        return {str(k): _parse(vt, v, where, _join(path, str(k)), ignored) for k, v in value.items()}
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise _fail(where, path, f"must be a finite number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, path, f"must be an integer, got {value!r}")
        return value
    if hint in (str, bool):
        if not isinstance(value, hint):
            raise _fail(where, path, f"must be {_type_name(hint)}, got {value!r}")
        return value
    raise _fail(where, path, f"has an unsupported type {hint}")  # pragma: no cover - a bug in the classes


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _check_one(obj, where: str, path: str) -> None:
    check = getattr(obj, "_check", None)
    if check is None:
        return
    try:
        check()
    except _Invalid as bad:
        raise _fail(where, _join(path, bad.path), str(bad)) from None


def _validate(obj, where: str, path: str) -> None:
    """The checks of ``obj`` and every section below it (for objects built in code, not parsed)."""
    if dataclasses.is_dataclass(obj):
        for f in fields(obj):
            _validate(getattr(obj, f.name), where, _join(path, f.name))
        _check_one(obj, where, path)
    elif isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            _validate(v, where, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _validate(v, where, _join(path, str(k)))
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise _fail(where, path, f"must be a finite number, got {obj}")


def _plain(obj):
    """Dataclasses -> JSON-ready dicts (tuples become lists); fields of a later revision left out while unset."""
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)
                if not (f.metadata.get("since") and getattr(obj, f.name) == f.default)}
    if isinstance(obj, (tuple, list)):
        return [_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    return obj


def _revision_used(obj) -> int:
    """The highest revision among the fields ``obj`` (and every section below it) sets."""
    if dataclasses.is_dataclass(obj):
        return max([f.metadata.get("since", 0) for f in fields(obj)
                    if f.name != "revision" and getattr(obj, f.name) != f.default]
                   + [_revision_used(getattr(obj, f.name)) for f in fields(obj)], default=0)
    if isinstance(obj, (tuple, list)):
        return max((_revision_used(v) for v in obj), default=0)
    if isinstance(obj, dict):
        return max((_revision_used(v) for v in obj.values()), default=0)
    return 0


# ---- JSON Schema, generated from the same classes -------------------------------------------------
def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of version 2, generated from the dataclasses.

    The shipped ``manifest.schema.json`` is this, written by ``python -m edgekit.manifest``;
    a test checks that the two agree.
    """
    defs: dict[str, Any] = {}
    root = _schema_of(Manifest, defs)
    doc = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "edgekit.manifest/2",
           "title": "edgekit model manifest, version 2", **defs.pop("Manifest"), "$defs": defs}
    doc["properties"]["schema"] = {"const": SCHEMA}
    assert root == {"$ref": "#/$defs/Manifest"}
    return doc


def _schema_of(hint, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [_schema_of(a, defs) for a in typing.get_args(hint)]}
    if hint is type(None):
        return {"type": "null"}
    if dataclasses.is_dataclass(hint):
        name = hint.__name__
        if name not in defs:
            defs[name] = {}  # placeholder against recursion
            hints = _hints(hint)
            props = {f.name: _schema_of(hints[f.name], defs) for f in fields(hint)}
            required = [f.name for f in fields(hint)
                        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
            defs[name] = {"type": "object", "description": (hint.__doc__ or "").strip().splitlines()[0],
                          "properties": props, "required": required, "additionalProperties": False}
        return {"$ref": f"#/$defs/{name}"}
    if origin is tuple:
        return {"type": "array", "items": _schema_of(typing.get_args(hint)[0], defs)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(typing.get_args(hint)[1], defs)}
    return {"type": {int: "integer", float: "number", str: "string", bool: "boolean"}[hint]}


SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")

if __name__ == "__main__":  # regenerate the shipped schema: python -m edgekit.manifest
    atomic_write_text(SCHEMA_FILE, json.dumps(json_schema(), indent=2) + "\n")
    print(SCHEMA_FILE)
