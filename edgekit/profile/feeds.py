"""What the profiler feeds each model input: seeded random data or the user's arrays, checked before any child starts.

``--input`` is repeatable; each value is one of

- ``random`` (the default): every input gets seeded random data, inside its calibration range
  when the model's manifest records one;
- ``FILE.npz``: arrays named by input name (a one-input model also takes ``x`` or a lone array);
- ``NAME=FILE.npy``: that input's data; ``FILE.npy`` alone only for a one-input model.

Inputs no file names get random data. A name matches an input by its tensor name
(``serving_default_image:0``), its signature name (``image``), or the tensor name without the
converter's ``serving_default_`` prefix and ``:0`` suffix: the converter may reorder inputs, so
data is matched by name, never by position. Unknown names, wrong shapes and unreadable files are
one-line ``UsageError`` s (exit 2) here, in the parent, before anything is started or copied.

Example:
    >>> plan = plan_inputs("two-inputs.tflite", ["image=img.npy"])         # doctest: +SKIP
    >>> plan.settings                                                      # doctest: +SKIP
    {'serving_default_features:0': 'random', 'serving_default_image:0': '/data/img.npy'}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import EdgekitError, UsageError
from . import child

PREFIX, SUFFIX = "serving_default_", ":0"


@dataclass
class InputPlan:
    """The child's ``input`` config and a description for the result's ``settings``."""

    spec: dict[str, Any]  # {"seed", "ranges", "files": {tensor name: {"path", "key"}}}
    settings: Any = "random"  # "random", or {tensor name: "random" | FILE | FILE[array]}
    files: list[Path] = field(default_factory=list)  # distinct local files (copied to a remote device)


@dataclass
class ModelInput:
    name: str  # tensor name, as the interpreter reports it
    shape: list[int]
    dtype: str
    scale: float | None
    zero_point: int | None
    aliases: tuple[str, ...]

    def detail(self) -> dict[str, Any]:
        """The interpreter-style detail the child's own checks take."""
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype,
                "quantization": (self.scale or 0.0, self.zero_point or 0)}


def model_inputs(model: Path) -> list[ModelInput]:
    """The model's inputs with every name they answer to (read from the flatbuffer, nothing loaded)."""
    from ..engine import io_specs

    specs, _ = io_specs(model)
    out = []
    for s in specs:  # the child sees tensor names; callers may use the signature name or the short one
        tensor = s.tensor_name
        short = tensor.removeprefix(PREFIX).removesuffix(SUFFIX)
        aliases = tuple(dict.fromkeys(a for a in (tensor, s.name, short) if a))
        out.append(ModelInput(tensor, list(s.shape), s.dtype, s.scale, s.zero_point, aliases))
    return out


def _names(inputs: list[ModelInput]) -> str:
    return ", ".join(i.aliases[-1] for i in inputs)


def _find(inputs: list[ModelInput], name: str, where: str) -> ModelInput:
    hits = [i for i in inputs if name in i.aliases]
    if len(hits) != 1:
        raise UsageError(f"--input {where}: the model has no input named {name!r}; its inputs: {_names(inputs)}")
    return hits[0]


def _load(path: Path, where: str):
    if not path.is_file():
        raise UsageError(f"--input {where}: no such file {path}; pass FILE.npz, NAME=FILE.npy or 'random'")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"--input {where}: cannot read {path} as .npy/.npz ({err})") from None


def _check_fits(inp: ModelInput, arr, where: str) -> None:
    """The child's own shape rule, applied here so a misfit stops before any child starts."""
    try:
        child.fit_file_array(np, arr, inp.detail(), where)
    except child.ChildError as err:
        raise UsageError(f"--input {err}") from None
    except Exception as err:  # an array numpy cannot cast to the input's dtype
        raise UsageError(f"--input {where}: cannot feed it to input {inp.name!r} ({err})") from None


def _random_ranges(manifest) -> dict[str, list[float]]:
    """Tensor name -> [min, max] over the channels of the manifest's calibration stats.

    Keyed by the interpreter's tensor name, which is what the child sees (the manifest's ``name`` is
    the signature key; a migrated version 1 manifest's is the tensor name itself)."""
    ranges = {}
    for spec in manifest.inputs if manifest else []:
        st = manifest.input_stats(spec.name)
        if st is not None:
            ranges[spec.tensor_name] = [float(min(st.min)), float(max(st.max))]
    return ranges


def plan_inputs(model: str | Path, values: str | Path | Iterable[str | Path] | None, manifest=None) -> InputPlan:
    """Check the ``--input`` values against the model's inputs; the plan the child follows."""
    model = Path(model)
    if values is None or isinstance(values, (str, Path)):
        values = [] if values is None else [values]
    values = [str(v) for v in values if str(v) != "random"]
    spec: dict[str, Any] = {"seed": 0, "ranges": _random_ranges(manifest), "files": {}}
    if not values:
        return InputPlan(spec)
    try:
        inputs = model_inputs(model)
    except EdgekitError as err:
        raise UsageError(f"--input: cannot read the inputs of {model.name}: {err}") from None
    files: dict[str, dict[str, Any]] = {}

    def use(inp: ModelInput, path: Path, key: str | None, arr, where: str) -> None:
        if inp.name in files:
            raise UsageError(f"--input {where}: input {inp.aliases[-1]!r} already has data from another --input")
        _check_fits(inp, arr, where)
        files[inp.name] = {"path": str(path.resolve()), "key": key}

    for value in values:
        name, sep, file = value.partition("=")
        if sep and not Path(value).is_file():  # NAME=FILE (a file whose name holds '=' still works)
            inp, path = _find(inputs, name, value), Path(file)
            data = _load(path, value)
            if hasattr(data, "files"):
                raise UsageError(f"--input {value}: NAME= takes a .npy; pass a .npz on its own (arrays named by input)")
            use(inp, path, None, data, value)
            continue
        path = Path(value)
        data = _load(path, value)
        if not hasattr(data, "files"):  # a lone .npy
            if len(inputs) != 1:
                raise UsageError(f"--input {value}: the model has {len(inputs)} inputs ({_names(inputs)}); "
                                 "use NAME=FILE.npy per input or one .npz with arrays named by input")
            use(inputs[0], path, None, data, value)
            continue
        if len(inputs) == 1:  # one input: its name, else 'x', else a lone array (eval.npz files hold x and y)
            inp = inputs[0]
            key = next((k for k in data.files if k in inp.aliases), None)
            key = key or ("x" if "x" in data.files else data.files[0] if len(data.files) == 1 else None)
            if key is None:
                raise UsageError(f"--input {value}: no array named {inp.aliases[-1]!r} or 'x' "
                                 f"(it holds {', '.join(data.files)})")
            use(inp, path, key, data[key], f"{value}[{key}]")
            continue
        for key in data.files:
            use(_find(inputs, key, f"{value}[{key}]"), path, key, data[key], f"{value}[{key}]")
    spec["files"] = files
    settings = {i.name: ("random" if i.name not in files else
                         files[i.name]["path"] + (f"[{files[i.name]['key']}]" if files[i.name]["key"] else ""))
                for i in inputs}
    distinct = list(dict.fromkeys(Path(f["path"]) for f in files.values()))
    return InputPlan(spec, settings, distinct)
