"""The TensorFlow Lite interpreter packages at the lowest level: find one, open a model, run it.

The only file in edgekit that calls a TFLite interpreter's API. Standalone on purpose (the
standard library and numpy, no edgekit imports): the profiler pipes this file to devices that
have no edgekit (profile/remote_ssh.bundle_source), so a device opens and runs a model with the
same code as this machine, XNNPACK retry included. edgekit's typed session (tflite.py) wraps it.

Packages, in the order edgekit prefers them: ai-edge-litert (the maintained successor of
tflite-runtime), tflite-runtime (old devices: armv7l, numpy<2), tf.lite (imports all of TensorFlow).

Example:
    >>> be = import_backend(None)                               # doctest: +SKIP
    >>> raw = open_raw(be, "digits-int8.tflite", threads=1)     # doctest: +SKIP
    >>> raw.run([x])[0].shape                                    # doctest: +SKIP
    (1, 10)
"""

from __future__ import annotations

import importlib
import os
import sys
import time

# (edgekit name, module holding Interpreter, distribution names for the version)
PACKAGES = (
    ("ai-edge-litert", "ai_edge_litert.interpreter", ("ai-edge-litert",)),
    ("tflite-runtime", "tflite_runtime.interpreter", ("tflite-runtime",)),
    ("tensorflow", "tensorflow.lite", ("tensorflow", "tensorflow-cpu")),
)
BACKEND_NAMES = tuple(p[0] for p in PACKAGES)
INTERPRETER_ERRORS = (RuntimeError, ValueError)  # what TFLite interpreters raise; anything else is a bug


class Backend:
    """An importable interpreter package: ``name``, ``version``, ``module`` (holds ``Interpreter``)."""

    def __init__(self, name: str, version: str, module):
        self.name, self.version, self.module = name, version, module

    def __repr__(self) -> str:  # the module object is noise in logs
        return f"Backend(name={self.name!r}, version={self.version!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Backend) and (self.name, self.version) == (other.name, other.version)

    def __hash__(self) -> int:
        return hash((self.name, self.version))

    @property
    def interpreter_class(self):
        return self.module.Interpreter

    def load_delegate(self, library: str, options: dict | None = None):
        """An external delegate from a shared library (a name the loader finds, or a path) with its
        options, e.g. ``load_delegate("libedgetpu.so.1", {"device": "usb"})``. ValueError when it cannot load."""
        import ctypes

        try:  # dlopen first: the packages' loader leaks an OSError (and a noisy __del__) for a missing library
            ctypes.CDLL(library)
        except OSError as err:
            raise ValueError(str(err).strip() or f"cannot open {library}") from None
        mod = self.module
        load = getattr(mod, "load_delegate", None) or getattr(getattr(mod, "experimental", None), "load_delegate")
        return load(library, {str(k): str(v) for k, v in (options or {}).items()})

    @property
    def op_resolver_type(self):
        """The OpResolverType enum (tf.lite keeps it under experimental); None when absent."""
        mod = self.module
        return getattr(mod, "OpResolverType", None) or getattr(getattr(mod, "experimental", None),
                                                               "OpResolverType", None)


def _version(dists, module) -> str:
    # The module's own __version__ first: importlib.metadata imports the email package with it, ~20 ms
    # of every app's start here and 110-130 ms on the emulated Pi (bench/bench_load_device.py --profile).
    root = sys.modules.get(getattr(module, "__name__", "").split(".")[0])
    own = getattr(module, "__version__", None) or getattr(root, "__version__", None)
    if isinstance(own, str) and own[:1].isdigit():
        return own
    from importlib import metadata

    for d in dists:
        try:
            return metadata.version(d)
        except metadata.PackageNotFoundError:
            continue
    return str(getattr(module, "__version__", "unknown"))


def try_import(name: str):
    """The package ``name`` if it imports here, else (None, why)."""
    for cand, modname, dists in PACKAGES:
        if cand != name:
            continue
        try:
            if modname == "tensorflow.lite":  # a lazy attribute of tensorflow, not an importable module
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
                module = importlib.import_module("tensorflow").lite
            else:
                module = importlib.import_module(modname)
        except Exception as err:  # ImportError, or numpy ABI errors from old wheels
            return None, type(err).__name__
        return Backend(cand, _version(dists, module), module), ""
    raise ValueError(f"unknown interpreter {name!r}")


def import_backend(wanted: str | None):
    """``wanted``, or the first package that imports; raises ImportError naming what was tried."""
    tried = []
    for name in BACKEND_NAMES:
        if wanted and name != wanted:
            continue
        be, why = try_import(name)
        if be is not None:
            return be
        tried.append(f"{name} ({why})")
    raise ImportError(f"no interpreter package (tried {', '.join(tried) or wanted})")


def is_delegate_failure(err: Exception) -> bool:
    text = str(err)
    return "delegate" in text.lower() or "XNNPack" in text


def invoke_on_zeros(interp) -> None:
    """One invoke on explicit zeros (allocated input memory is not zeroed: gathers by it can fail)."""
    import numpy as np

    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    interp.invoke()


class RawSession:
    """One allocated interpreter: its raw I/O details, feed, invoke, fetch, resize and ops.

    Not thread-safe (no TFLite interpreter is); callers pool sessions.
    ``default_delegates``: False when it runs without XNNPACK (it could not prepare the graph).
    ``times``: load_ms (create) and init_ms (allocate) of the successful open.
    """

    def __init__(self, interp, backend: Backend, default_delegates: bool, times: dict, signature: str | None = None):
        self.interp, self.backend, self.default_delegates, self.times = interp, backend, default_delegates, times
        self.signature, self._sig = signature, None
        if signature is not None:
            self._sig = _signature(interp, signature)
        self.refresh()

    def refresh(self) -> None:
        """Re-read the I/O details (after a resize their shapes change)."""
        if self._sig is None:
            self.input_details = self.interp.get_input_details()
            self.output_details = self.interp.get_output_details()
        else:  # the signature's own subgraph, its I/O in the signature's order
            sub, ins, outs = self._sig
            detail = self.interp._get_tensor_details
            self.input_details = [detail(i, sub) for i in ins.values()]
            self.output_details = [detail(i, sub) for i in outs.values()]
        self._in = [int(d["index"]) for d in self.input_details]
        self._out = [int(d["index"]) for d in self.output_details]
        self._first = self._in[0] if self._in else None

    def set_inputs(self, xs) -> None:
        """One array per input, in ``input_details`` order."""
        if self._sig is not None:
            wrapper, sub = self.interp._interpreter, self._sig[0]
            for i, x in zip(self._in, xs):
                wrapper.SetTensor(i, x, sub)
            return
        interp = self.interp
        for i, x in zip(self._in, xs):
            interp.set_tensor(i, x)

    def invoke(self) -> None:
        if self._sig is not None:
            self.interp._interpreter.Invoke(self._sig[0])
        else:
            self.interp.invoke()

    def get_outputs(self) -> list:
        """Copies of the outputs, in ``output_details`` order."""
        if self._sig is not None:
            wrapper, sub = self.interp._interpreter, self._sig[0]
            return [wrapper.GetTensor(i, sub) for i in self._out]
        get = self.interp.get_tensor
        return [get(i) for i in self._out]

    def run1(self, x) -> list:
        """``run`` for a one-input model, without the input list."""
        if self._sig is not None:  # another subgraph: the signature's own tensor calls
            return self.run((x,))
        interp = self.interp
        interp.set_tensor(self._first, x)
        interp.invoke()
        get = interp.get_tensor
        return [get(i) for i in self._out]

    def run(self, xs) -> list:
        self.set_inputs(xs)
        self.invoke()
        return self.get_outputs()

    def resize(self, shapes) -> None:
        """Resize the inputs (one shape each, in input order) and allocate."""
        if self._sig is not None:
            import numpy as np

            wrapper, sub = self.interp._interpreter, self._sig[0]
            for i, s in zip(self._in, shapes):
                wrapper.ResizeInputTensor(i, np.array(list(s), dtype=np.int32), False, sub)
            wrapper.AllocateTensors(sub)
        else:
            for i, s in zip(self._in, shapes):
                self.interp.resize_tensor_input(i, list(s))
            self.interp.allocate_tensors()
        self.refresh()

    def ops(self) -> list[dict]:
        """[{"name", "inputs", "outputs"}] in execution order, delegate nodes left out; [] when the
        build does not expose the list (it is a private API) or a signature runs another subgraph."""
        if self._sig is not None and self._sig[0] != 0:
            return []
        try:
            ops = self.interp._get_ops_details()
        except Exception:
            return []
        return [{"name": op["op_name"], "inputs": [int(t) for t in op["inputs"]],
                 "outputs": [int(t) for t in op["outputs"]]} for op in ops if op["op_name"] != "DELEGATE"]

    def signature_names(self) -> tuple[dict, dict]:
        """{tensor index: signature key} for inputs and outputs of the chosen signature, or of the one
        serving signature ({} when absent)."""
        if self._sig is not None:
            _, ins, outs = self._sig
            return {int(i): str(k) for k, i in ins.items()}, {int(i): str(k) for k, i in outs.items()}
        try:
            sigs = self.interp._get_full_signature_list()  # keys -> tensor indices; public API lists keys only
        except Exception:  # older interpreters: names stay tensor names
            return {}, {}
        if not sigs or len(sigs) != 1:
            return {}, {}
        sig = next(iter(sigs.values()))
        return ({int(i): str(k) for k, i in sig.get("inputs", {}).items()},
                {int(i): str(k) for k, i in sig.get("outputs", {}).items()})

    def close(self) -> None:
        self.interp = None


def _signature(interp, name: str) -> tuple[int, dict, dict]:
    """(subgraph index, {input key: tensor index}, {output key: tensor index}) of signature ``name``;
    ValueError naming the signatures the model has when it has no such one."""
    try:
        sigs = interp._get_full_signature_list()
    except AttributeError:
        sigs = {}
    if name not in sigs:
        have = ", ".join(sorted(sigs)) or "none"
        err = ValueError(f"the model has no signature named {name!r} (its signatures: {have})")
        err.stage = "signature"
        raise err
    sub = int(interp._interpreter.GetSubgraphIndexFromSignature(name))
    interp._interpreter.AllocateTensors(sub)
    return sub, dict(sigs[name].get("inputs", {})), dict(sigs[name].get("outputs", {}))


def open_raw(backend: Backend, model, *, threads: int | None = None, default_delegates: bool | None = None,
             verify: bool = True, check_run: bool = False, delegate: str | None = None,
             delegate_options: dict | None = None, signature: str | None = None) -> RawSession:
    """Create and allocate an interpreter for a model path or bytes; the XNNPACK retry, in one place.

    ``default_delegates=None`` tries XNNPACK first and retries without it when XNNPACK cannot prepare
    the graph (sparse int8 models do this). XNNPACK prepares lazily, so with ``verify`` one invoke on
    zeros proves the choice; ``verify=False`` keeps that first invoke unmeasured (the profiler).
    ``check_run``: always invoke once on zeros and read the outputs (the load probe's test).
    ``delegate``: an external delegate library (``libedgetpu.so.1`` or a path) loaded with
    ``delegate_options``; it takes the nodes it supports, the CPU kernels the rest. A library that
    does not load raises ValueError with ``err.stage == "delegate"``.
    ``signature``: run that signature's subgraph and I/O instead of the main graph's (ValueError with
    ``err.stage == "signature"`` when the model has none of that name).
    Interpreter errors (ValueError, RuntimeError) propagate from the last attempt.
    """
    kwargs = {"num_threads": threads}
    if isinstance(model, (bytes, bytearray, memoryview)):
        kwargs["model_content"] = bytes(model)
    else:
        kwargs["model_path"] = str(model)
    modes = [True, False] if default_delegates is None else [default_delegates]
    resolver = backend.op_resolver_type
    if resolver is None:
        modes = [m for m in modes if m] or modes
    for n, use in enumerate(modes):
        opts = dict(kwargs)
        if not use:
            opts["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        if delegate is not None:  # a fresh one per attempt: a delegate belongs to one interpreter
            try:
                opts["experimental_delegates"] = [backend.load_delegate(delegate, delegate_options)]
            except INTERPRETER_ERRORS as err:
                err.stage = "delegate"
                raise
        stage = "load"  # said on the error (err.stage): "run" when only check_run's first run failed
        try:
            t0 = time.perf_counter()
            interp = backend.interpreter_class(**opts)
            t1 = time.perf_counter()
            interp.allocate_tensors()
            t2 = time.perf_counter()
            if signature is not None:
                stage = "signature"
                sig_session = RawSession(interp, backend, use, {}, signature)
                stage = "load"
            if verify and use and default_delegates is None and not check_run:
                invoke_on_zeros(interp)
            t3 = None
            if check_run:
                stage = "run"
                invoke_on_zeros(interp)
                for d in interp.get_output_details():
                    interp.get_tensor(d["index"])
                t3 = time.perf_counter()
        except INTERPRETER_ERRORS as err:
            if n + 1 < len(modes) and is_delegate_failure(err):
                continue  # XNNPACK could not prepare the graph: run it on the builtin kernels
            err.stage = stage
            raise
        times = {"load_ms": (t1 - t0) * 1e3, "init_ms": (t2 - t1) * 1e3}
        if t3 is not None:  # the first run (XNNPACK prepares during it: an upper bound of a steady invoke)
            times["first_run_ms"] = (t3 - t2) * 1e3
        if signature is not None:
            sig_session.times = times
            return sig_session
        return RawSession(interp, backend, use, times)
    raise RuntimeError("no interpreter mode to try")  # unreachable: modes is never empty
