"""Interpreter discovery, in one place: ai_edge_litert, then tflite_runtime, then tensorflow.lite.

ai-edge-litert is the maintained successor of tflite-runtime and the default.
tflite-runtime 2.14 is kept for old devices (armv7l, numpy<2). tf.lite works but
imports all of TensorFlow, so it is the last resort.

Example:
    >>> from edgekit.engine.tflite import make_interpreter
    >>> interp = make_interpreter("model.tflite", num_threads=2)   # doctest: +SKIP
    >>> interp.backend                                              # doctest: +SKIP
    Backend(name='ai-edge-litert', version='2.3.0')
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import MissingDependencyError, ModelLoadError, UsageError

# (edgekit name, module holding Interpreter, distribution name for the version)
_CANDIDATES = (
    ("ai-edge-litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite-runtime", "tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow", "tensorflow.lite", "tensorflow-cpu"),
)
BACKEND_NAMES = tuple(c[0] for c in _CANDIDATES)


@dataclass(frozen=True)
class Backend:
    """An importable interpreter package."""

    name: str
    version: str
    module: Any

    def __repr__(self) -> str:  # the module object is noise in logs
        return f"Backend(name={self.name!r}, version={self.version!r})"

    @property
    def interpreter_class(self):
        return self.module.Interpreter

    @property
    def op_resolver_type(self):
        """The OpResolverType enum (tf.lite keeps it under experimental)."""
        mod = self.module
        return getattr(mod, "OpResolverType", None) or mod.experimental.OpResolverType


def _version(dist: str, module: Any) -> str:
    for name in (dist, "tensorflow", "tensorflow-cpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return str(getattr(module, "__version__", "unknown"))


def _try_import(name: str, modname: str, dist: str) -> Backend | None:
    try:
        if modname == "tensorflow.lite":  # a lazy attribute of tensorflow, not an importable module
            import os

            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            module = importlib.import_module("tensorflow").lite
        else:
            module = importlib.import_module(modname)
    except Exception:  # ImportError, or numpy ABI errors from old wheels
        return None
    return Backend(name, _version(dist, module), module)


_cache: dict[str, Backend | None] = {}


def get_backend(name: str | None = None) -> Backend:
    """The interpreter package to use: ``name`` if given, else the first one installed.

    Raises MissingDependencyError naming what to install when none is present.
    """
    if name is not None and name not in BACKEND_NAMES:
        raise UsageError(f"unknown interpreter {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    for cand, modname, dist in _CANDIDATES:
        if name is not None and cand != name:
            continue
        if cand not in _cache:
            _cache[cand] = _try_import(cand, modname, dist)
        if _cache[cand] is not None:
            return _cache[cand]
    if name is not None:
        raise MissingDependencyError(f"interpreter package {name!r} is not installed; pip install {name}")
    raise MissingDependencyError(
        "no TensorFlow Lite interpreter found; pip install ai-edge-litert "
        "(or tflite-runtime on armv7l devices)"
    )


def available_backends() -> list[Backend]:
    """All interpreter packages that import here, in preference order."""
    found = []
    for cand, _, _ in _CANDIDATES:
        try:
            found.append(get_backend(cand))
        except MissingDependencyError:
            pass
    return found


def _is_delegate_failure(err: Exception) -> bool:
    text = str(err)
    return "delegate" in text.lower() or "XNNPack" in text


def make_interpreter(
    model: str | Path | bytes,
    *,
    num_threads: int | None = None,
    backend: str | Backend | None = None,
    default_delegates: bool | None = None,
    verify: bool = True,
):
    """Create and allocate an interpreter for a model path or model bytes.

    ``default_delegates=None`` tries XNNPACK first and retries without it when
    XNNPACK cannot prepare the graph (sparse int8 models do this). XNNPACK prepares
    lazily, so with ``verify`` (the default) one invoke on zeros proves the choice;
    pass ``verify=False`` where that first invoke must stay unmeasured. The chosen
    backend and delegate mode are attached as ``interp.backend`` and
    ``interp.edgekit_default_delegates``.
    """
    be = backend if isinstance(backend, Backend) else get_backend(backend)
    if num_threads is not None and num_threads < 1:
        raise UsageError(f"num_threads must be at least 1, got {num_threads}")
    kwargs: dict[str, Any] = {"num_threads": num_threads}
    if isinstance(model, (bytes, bytearray, memoryview)):
        kwargs["model_content"] = bytes(model)
        label = "<bytes>"
    else:
        kwargs["model_path"] = str(model)
        label = str(model)

    def create(use_default: bool):
        opts = dict(kwargs)
        if not use_default:
            opts["experimental_op_resolver_type"] = be.op_resolver_type.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interp = be.interpreter_class(**opts)
        interp.allocate_tensors()
        if verify and use_default and default_delegates is None:
            _invoke_on_zeros(interp)
        interp.backend = be
        interp.edgekit_default_delegates = use_default
        return interp

    use_default = default_delegates is not False
    try:
        try:
            return create(use_default)
        except (ValueError, RuntimeError) as err:
            if default_delegates is not None or not _is_delegate_failure(err):
                raise
            return create(False)  # XNNPACK could not prepare the graph: run it on the builtin kernels
    except (ValueError, RuntimeError) as err:
        reason = _first_line(err) + _load_hint(err)
        raise ModelLoadError(f"{label}: {be.name} cannot load this model: {reason}") from None


def _invoke_on_zeros(interp) -> None:
    """One invoke on explicit zeros (allocated input memory is not zeroed: gathers by it can fail)."""
    import numpy as np

    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    interp.invoke()


# An interpreter older than the converter refuses newer op versions with
# "Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'" (tflite-runtime 2.14 on a TF 2.21
# dynamic-range model). The fix is on the converting side, so say it.
_OLD_OP_VERSION = re.compile(r"Didn't find op for builtin opcode '[A-Z0-9_]+' version '\d+'")
OLD_RUNTIME_HINT = ("; this interpreter is older than the converter: re-convert the model with "
                    "`edgekit convert --compat tflite-runtime-2.14`, or install ai-edge-litert where it has wheels")


def _load_hint(err: Exception) -> str:
    """What to do about a load failure, when the message says; '' otherwise."""
    return OLD_RUNTIME_HINT if _OLD_OP_VERSION.search(str(err)) else ""


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # TFLite puts the useful part (the op, the version) in the first line or two.
    return " ".join(lines[:2])[:300] if lines else type(err).__name__
