"""The TFLite engine: interpreter discovery and a typed session over tflite_interp.RawSession.

ai-edge-litert is the maintained successor of tflite-runtime and the default.
tflite-runtime 2.14 is kept for old devices (armv7l, numpy<2). tf.lite works but
imports all of TensorFlow, so it is the last resort.

Example:
    >>> from edgekit.engine.tflite import open_trusted
    >>> s = open_trusted("model.tflite", threads=2)      # doctest: +SKIP
    >>> s.engine, [t.name for t in s.inputs]              # doctest: +SKIP
    ('ai-edge-litert 2.3.0', ['image'])
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

from ..errors import InferenceError, MissingDependencyError, ModelLoadError, UsageError
from ..manifest import TensorSpec
from . import tflite_interp
from .session import Feeds, Op
from .tflite_interp import INTERPRETER_ERRORS, Backend, is_delegate_failure

BACKEND_NAMES = tflite_interp.BACKEND_NAMES
_cache: dict[str, Backend | None] = {}


def get_backend(name: str | None = None) -> Backend:
    """The interpreter package to use: ``name`` if given, else the first one installed.

    Raises MissingDependencyError naming what to install when none is present.
    """
    if name is not None and name not in BACKEND_NAMES:
        raise UsageError(f"unknown interpreter {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    for cand in BACKEND_NAMES:
        if name is not None and cand != name:
            continue
        if cand not in _cache:
            _cache[cand] = tflite_interp.try_import(cand)[0]
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
    for cand in BACKEND_NAMES:
        try:
            found.append(get_backend(cand))
        except MissingDependencyError:
            pass
    return found


def _failed(label: str, err: Exception) -> InferenceError:
    text = "; ".join(ln.strip() for ln in str(err).splitlines() if ln.strip())[:200]
    return InferenceError(f"{label}: the interpreter failed: {text}")


class TFLiteSession:
    """One allocated TFLite interpreter behind the session protocol (engine/session.py)."""

    def __init__(self, raw: tflite_interp.RawSession, label: str):
        self.raw, self.label = raw, label
        self.backend: Backend = raw.backend
        self.engine = f"{raw.backend.name} {raw.backend.version}"
        self.default_delegates = raw.default_delegates
        self.first_run_ms = raw.times.get("first_run_ms")  # the load's run on zeros, when it made one
        self._specs()

    def _specs(self) -> None:
        in_names, out_names = self.raw.signature_names()
        self.inputs: list[TensorSpec] = [TensorSpec.from_detail(d, in_names.get(int(d["index"])))
                                         for d in self.raw.input_details]
        self.outputs: list[TensorSpec] = [TensorSpec.from_detail(d, out_names.get(int(d["index"])))
                                          for d in self.raw.output_details]
        self._pos = {t.name: i for i, t in enumerate(self.inputs)}
        self._pos.update({t.tensor: i for i, t in enumerate(self.inputs) if t.tensor})

    def _ordered(self, feeds: Feeds) -> Sequence[Any]:
        if not isinstance(feeds, dict):
            return feeds
        out: list[Any] = [None] * len(self.inputs)
        for name, x in feeds.items():
            if name not in self._pos:
                raise UsageError(f"{self.label}: no input named {name!r}; it has "
                                 f"{', '.join(t.name for t in self.inputs)}")
            out[self._pos[name]] = x
        missing = [t.name for t, x in zip(self.inputs, out) if x is None]
        if missing:
            raise UsageError(f"{self.label}: no data for input(s) {', '.join(missing)}")
        return out

    # Only the interpreter's own calls are inside the try: a bug in edgekit is not an inference error.
    def run(self, feeds: Feeds) -> list[Any]:
        try:
            return self.raw.run(self._ordered(feeds))
        except INTERPRETER_ERRORS as err:
            raise _failed(self.label, err) from None

    def run1(self, x) -> list[Any]:
        """``run`` for a one-input model: the array, no list (the guarded runtime's per-call path)."""
        try:
            return self.raw.run1(x)
        except INTERPRETER_ERRORS as err:
            raise _failed(self.label, err) from None

    def set_inputs(self, feeds: Feeds) -> None:
        try:
            self.raw.set_inputs(self._ordered(feeds))
        except INTERPRETER_ERRORS as err:
            raise _failed(self.label, err) from None

    def invoke(self) -> None:
        try:
            self.raw.invoke()
        except INTERPRETER_ERRORS as err:
            raise _failed(self.label, err) from None

    def get_outputs(self) -> list[Any]:
        try:
            return self.raw.get_outputs()
        except INTERPRETER_ERRORS as err:
            raise _failed(self.label, err) from None

    def resize(self, shapes: Sequence[Sequence[int]]) -> None:
        try:
            self.raw.resize(shapes)
        except INTERPRETER_ERRORS as err:
            raise _failed(self.label, err) from None
        self._specs()

    def current_shapes(self) -> list[tuple[int, ...]]:
        """The input shapes the interpreter is allocated for now (a dynamic batch reads as 1 until resized)."""
        return [tuple(int(v) for v in d["shape"]) for d in self.raw.input_details]

    def ops(self) -> list[Op]:
        return [Op(o["name"], tuple(o["inputs"]), tuple(o["outputs"])) for o in self.raw.ops()]

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> "TFLiteSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_tflite(model: str | Path | bytes, *, threads: int | None = None, backend: str | Backend | None = None,
                default_delegates: bool | None = None, verify: bool = True, check_run: bool = False,
                label: str | None = None, delegate: str | None = None, delegate_options: dict | None = None,
                signature: str | None = None) -> TFLiteSession:
    """Create and allocate an interpreter; failures become one ModelLoadError (with the fix, when known).

    ``default_delegates=None`` tries XNNPACK first and retries without it when XNNPACK cannot prepare
    the graph (tflite_interp.open_raw, where the retry is written once). ``delegate``: an external
    delegate library by name or path, with ``delegate_options``; ``signature``: the signature to run
    (its subgraph, its input and output names).

    Example:
        >>> s = open_tflite("m_edgetpu.tflite", delegate="libedgetpu.so.1",
        ...                 delegate_options={"device": "usb"}, signature="serving_default")  # doctest: +SKIP
    """
    be = backend if isinstance(backend, Backend) else get_backend(backend)
    if threads is not None and threads < 1:
        raise UsageError(f"num_threads must be at least 1, got {threads}")
    if label is None:
        label = "<bytes>" if isinstance(model, (bytes, bytearray, memoryview)) else str(model)
    try:
        raw = tflite_interp.open_raw(be, model, threads=threads, default_delegates=default_delegates,
                                     verify=verify, check_run=check_run, delegate=delegate,
                                     delegate_options=delegate_options, signature=signature)
    except INTERPRETER_ERRORS as err:
        stage = getattr(err, "stage", "load")
        if stage == "delegate":
            raise ModelLoadError(delegate_error(delegate, err)) from None
        if stage == "signature":
            raise UsageError(f"{label}: {_first_line(err)}; pick one with --signature NAME") from None
        if stage == "run":
            first = " ".join(str(err).split())[:240]
            raise ModelLoadError(f"{label}: the model fails on a first run with zero input: {first}") from None
        reason = _first_line(err) + _load_hint(err)
        if delegate is not None:  # most delegates (the Edge TPU's too) take static shapes only
            reason += (f" (with the delegate {delegate}: if the model has a dynamic batch, re-convert it with "
                       "edgekit convert --batch-size 1)")
        raise ModelLoadError(f"{label}: {be.name} cannot load this model: {reason}") from None
    return TFLiteSession(raw, label)


def open_trusted(model: str | Path | bytes, *, threads: int | None = None, backend: str | Backend | None = None,
                 default_delegates: bool | None = None, verify: bool = True) -> TFLiteSession:
    """A session for a file edgekit itself just wrote (a conversion's output): no load probe.

    Untrusted files go through ``engine.open_model`` (structure check and the crash probe first).
    """
    return open_tflite(model, threads=threads, backend=backend, default_delegates=default_delegates, verify=verify)


# An interpreter older than the converter refuses newer op versions with
# "Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'" (tflite-runtime 2.14 on a TF 2.21
# dynamic-range model). The fix is on the converting side, so say it.
_OLD_OP_VERSION = re.compile(r"Didn't find op for builtin opcode '[A-Z0-9_]+' version '\d+'")
OLD_RUNTIME_HINT = ("; this interpreter is older than the converter: re-convert the model with "
                    "`edgekit convert --compat tflite-runtime-2.14`, or install ai-edge-litert where it has wheels")


def delegate_error(library: str | None, err: Exception) -> str:
    """The one line for an external delegate that did not load (the profiler's child says the same)."""
    return (f"the delegate {library} could not be loaded: {_first_line(err)}; give a library the loader finds "
            "(e.g. libedgetpu.so.1 with the Edge TPU runtime installed) or its path, and check its options")


def _load_hint(err: Exception) -> str:
    """What to do about a load failure, when the message says; '' otherwise."""
    return OLD_RUNTIME_HINT if _OLD_OP_VERSION.search(str(err)) else ""


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # TFLite puts the useful part (the op, the version) in the first line or two.
    return " ".join(lines[:2])[:300] if lines else type(err).__name__


__all__ = ["BACKEND_NAMES", "Backend", "TFLiteSession", "available_backends", "get_backend", "is_delegate_failure",
           "open_tflite", "open_trusted"]
