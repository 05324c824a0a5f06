"""The manifest: the facts about a converted model that travel with it.

It is a JSON sidecar next to the model (``model.tflite`` -> ``model.manifest.json``),
written by ``edgekit convert`` and read by the runtime, the profiler and the checks.
Nothing downstream re-derives what the manifest already says. The schema is
documented in README.md ("Manifest schema") and versioned by ``SCHEMA``.

Example:
    >>> m = Manifest.load("digits-int8.tflite")          # doctest: +SKIP
    >>> m.inputs[0].shape, m.inputs[0].dtype, m.inputs[0].scale   # doctest: +SKIP
    ([1, 8, 8, 1], 'int8', 0.0039215)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError
from .fsutil import atomic_write_text, read_json

SCHEMA = "edgekit.manifest/1"
SUFFIX = ".manifest.json"


def manifest_path_for(model_path: str | Path) -> Path:
    """``model.tflite`` -> ``model.manifest.json`` (same folder)."""
    p = Path(model_path)
    return p.with_name(p.stem + SUFFIX) if p.suffix else p.with_name(p.name + SUFFIX)


@dataclass
class TensorSpec:
    """One model input or output as the interpreter sees it."""

    name: str
    index: int
    shape: list[int]  # -1 marks a dynamic dimension
    dtype: str  # numpy dtype name: float32, int8, uint8, int16, ...
    scale: float | None = None  # quantization: real = scale * (q - zero_point)
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None and self.scale != 0.0

    @classmethod
    def from_detail(cls, d: dict[str, Any]) -> "TensorSpec":
        """From an interpreter's get_input_details() / get_output_details() entry."""
        import numpy as np

        sig = d.get("shape_signature")
        shape = [int(v) for v in (sig if sig is not None and len(sig) else d["shape"])]
        scale, zp = d.get("quantization", (0.0, 0))
        return cls(
            name=str(d["name"]),
            index=int(d["index"]),
            shape=shape,
            dtype=np.dtype(d["dtype"]).name,
            scale=float(scale) if scale else None,
            zero_point=int(zp) if scale else None,
        )


def tensor_specs(interp) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Input and output specs of an allocated interpreter."""
    return (
        [TensorSpec.from_detail(d) for d in interp.get_input_details()],
        [TensorSpec.from_detail(d) for d in interp.get_output_details()],
    )


@dataclass
class Manifest:
    """Everything edgekit knows about one converted model (see README, "Manifest schema")."""

    model: dict[str, Any]  # file, sha256, size_bytes, size_zlib_bytes
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: dict[str, Any] = field(default_factory=dict)  # path, format, sha256, size_bytes, params
    recipe: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    compat: str | None = None
    pruning: dict[str, Any] | None = None
    tools: dict[str, str] = field(default_factory=dict)
    task: str = "unknown"  # classification | regression | unknown
    preprocessing: dict[str, Any] | None = None
    labels: list[str] | None = None
    calibration: dict[str, Any] | None = None  # {"samples", "source", "inputs": {name: stats}}
    accuracy: dict[str, Any] | None = None
    sizes: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    schema: str = SCHEMA

    # ---- (de)serialisation -------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d = {"schema": d.pop("schema"), **d}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, where: str = "manifest") -> "Manifest":
        if not isinstance(d, dict):
            raise ManifestError(f"{where}: not a JSON object")
        schema = d.get("schema")
        if schema != SCHEMA:
            raise ManifestError(f"{where}: schema {schema!r} is not {SCHEMA!r}; re-run edgekit convert")
        try:
            known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
            known["inputs"] = [TensorSpec(**t) for t in d["inputs"]]
            known["outputs"] = [TensorSpec(**t) for t in d["outputs"]]
            return cls(**known)
        except (KeyError, TypeError) as err:
            raise ManifestError(f"{where}: malformed manifest ({err}); re-run edgekit convert") from None

    def save(self, path: str | Path) -> Path:
        """Write atomically to ``path`` (a .manifest.json, or the model path it belongs to)."""
        p = Path(path)
        if not p.name.endswith(SUFFIX):
            p = manifest_path_for(p)
        atomic_write_text(p, self.to_json())
        return p

    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        """Load from a .manifest.json, or from the model path it sits next to."""
        p = Path(path)
        if not p.name.endswith(SUFFIX):
            p = manifest_path_for(p)
        if not p.exists():
            raise ManifestError(f"{p}: no manifest next to the model; convert it with edgekit convert")
        data = read_json(p, ManifestError, "manifest")
        return cls.from_dict(data, where=str(p))

    @classmethod
    def find(cls, model_path: str | Path) -> "Manifest | None":
        """The model's manifest if one sits next to it, else None (errors still raise)."""
        p = manifest_path_for(model_path)
        return cls.load(p) if p.exists() else None

    # ---- convenience -------------------------------------------------------
    def input_stats(self, name: str) -> dict[str, Any] | None:
        if not self.calibration:
            return None
        return self.calibration.get("inputs", {}).get(name)
