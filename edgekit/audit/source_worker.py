"""The Keras source in a child process, so a native crash in TensorFlow fails one audit stage, not the audit.

TensorFlow 2.21 segfaulted inside a gradient (``conv2d_backprop_filter``) on a published
legacy .hdf5 CNN; a segfault cannot be caught in-process. Here only the child imports
TensorFlow (the parent keeps the converted model's interpreter, so the two native runtimes
never share a process), and the child starts with ``TF_ENABLE_ONEDNN_OPTS=0`` unless the
caller set it: oneDNN's kernels were the path that crashed. When the child dies, the call
raises ``StageCrashed`` with the signal; the next call starts a fresh child.

Example:
    >>> with SourceWorker("digits.keras") as src:                         # doctest: +SKIP
    ...     src.call("reference", "scores", x).shape
    (450, 10)
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EdgekitError, SourceModelError

# tests: "STAGE" (an audit stage or a harden op) -> SIGSEGV there, "STAGE:raise" -> an exception
CRASH_HOOK = "EDGEKIT_AUDIT_TEST_CRASH"
CHILD_ENV = {"TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
HINT = ("try TF_ENABLE_ONEDNN_OPTS=0 (the default here; a value you set is kept), another TensorFlow "
        "version, or audit without --source: the checks on the converted file still run")


class StageCrashed(EdgekitError):
    """The source's child process died (a native crash) or raised while serving ``stage``."""

    exit_code = 1

    def __init__(self, stage: str, exitcode: int | None, error: str | None = None, hint: str = HINT):
        self.stage, self.exitcode = stage, exitcode
        self.signal = signal.Signals(-exitcode).name if exitcode and exitcode < 0 else None
        how = f"signal {self.signal}" if self.signal else f"exit code {exitcode}"
        what = f"TensorFlow raised {error}" if error else f"the TensorFlow child process died ({how})"
        super().__init__(f"stage {stage}: {what}; {hint}")


def spawn(target, args: tuple, name: str):
    """Start ``target(child_end, *args)`` in a spawned process with CHILD_ENV; returns (process, parent_end)."""
    ctx = mp.get_context("spawn")  # a fork would copy the parent's interpreter threads into the child
    parent, child = ctx.Pipe()
    saved = {k: os.environ.get(k) for k in CHILD_ENV}
    os.environ.update({k: v for k, v in CHILD_ENV.items() if saved[k] is None})
    try:  # the spawned child copies os.environ when it starts
        proc = ctx.Process(target=target, args=(child, *args), daemon=True, name=name)
        proc.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
    child.close()
    return proc, parent


def stop(proc, conn) -> None:
    """Close the pipe (the child's recv sees EOF and returns), wait, and kill a child that lingers."""
    conn.close()
    proc.join(10)
    if proc.is_alive():
        proc.kill()
        proc.join()


def _scores(model, x: np.ndarray, batch: int = 256) -> np.ndarray:
    outs = []
    for s in range(0, len(x), batch):
        y = model(x[s:s + batch], training=False)
        y = y[0] if isinstance(y, (list, tuple)) else y
        outs.append(np.asarray(y, np.float32).reshape(min(batch, len(x) - s), -1))
    return np.concatenate(outs)


def _serve(conn, source: str) -> None:
    """Child: load the source, send its input shape, then answer (stage, op, args, kw) requests."""
    try:
        from ..conversion.loader import load_source

        src = load_source(source)
        if src.keras is None:
            raise SourceModelError(f"{source}: the audit's gradients need a Keras source (.keras or .h5), "
                                   "not a SavedModel folder")
        conn.send(("ok", tuple(-1 if d is None else int(d) for d in src.keras.inputs[0].shape[1:])))
    except EdgekitError as err:
        conn.send(("error", err))
        return
    from .attacks import ATTACKS

    while True:
        try:
            stage, op, args, kw = conn.recv()
        except EOFError:  # the parent is gone or closed the pipe
            return
        if os.environ.get(CRASH_HOOK) == stage:
            os.kill(os.getpid(), signal.SIGSEGV)
        try:
            if os.environ.get(CRASH_HOOK) == f"{stage}:raise":
                raise RuntimeError("test hook")
            out = _scores(src.keras, *args) if op == "scores" else ATTACKS[op](src.keras, *args, **kw)
            conn.send(("ok", out))
        except Exception as err:  # a Python error in TensorFlow fails the stage too; the child keeps serving
            conn.send(("failed", f"{type(err).__name__}: {err}".splitlines()[0][:300]))


class SourceWorker:
    """A spawned child that holds the Keras source; ``call`` runs one operation there."""

    def __init__(self, source: str | Path):
        self.source = str(source)
        self.proc: mp.process.BaseProcess | None = None
        self.conn = None
        self.input_shape: tuple[int, ...] | None = None

    def __enter__(self) -> "SourceWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, stage: str) -> None:
        """Spawn the child and load the source there; sets ``input_shape``."""
        self.proc, self.conn = spawn(_serve, (self.source,), "edgekit-source")
        self.input_shape = self._receive(stage)

    def _receive(self, stage: str) -> Any:
        try:
            status, value = self.conn.recv()
        except (EOFError, ConnectionError):
            self.proc.join(10)
            code = self.proc.exitcode
            self._reset()
            raise StageCrashed(stage, code) from None
        if status == "error":  # the source cannot be loaded: bad input, exit 2
            raise value
        if status == "failed":
            raise StageCrashed(stage, None, value)
        return value

    def call(self, stage: str, op: str, *args, **kw) -> Any:
        """Run ``op`` ("scores", or an attack name from attacks.ATTACKS) in the child; StageCrashed if it dies."""
        if self.proc is None:
            self.start(stage)
        try:
            self.conn.send((stage, op, args, kw))
        except (BrokenPipeError, ConnectionError):
            pass  # the child is already dead: _receive reports how
        return self._receive(stage)

    def _reset(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn = None, None

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc, self.conn)
        self.proc, self.conn = None, None
