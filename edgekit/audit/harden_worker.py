"""The TensorFlow half of ``edgekit harden``, in a spawned child (as the audit's source_worker.py): training,
conversion and the PGD evaluation run there, so a native crash in TensorFlow is a clean error, not a dead process.

The parent sends ``(op, kwargs)``; the child answers with progress messages (``("bar", label, total)``,
``("advance", n)``, ``("end",)``) and then ``("ok", value)``, ``("error", EdgekitError)`` or
``("failed", text)``. Ops: ``inspect``, ``train``, ``convert``, ``evaluate``.

Example:
    >>> with HardenWorker() as w:                                            # doctest: +SKIP
    ...     w.call("inspect", source="digits.keras")["classes"]
    10
"""

from __future__ import annotations

import math
import os
import signal
from typing import Any

import numpy as np

from ..errors import EdgekitError, UsageError
from ..progress import Progress
from .source_worker import CRASH_HOOK, StageCrashed, _scores, spawn, stop

HINT = ("try TF_ENABLE_ONEDNN_OPTS=0 (the default here; a value you set is kept), another TensorFlow version, "
        "or fewer --steps")


def _load(source: str):
    from ..conversion.loader import load_source

    src = load_source(source)
    if src.keras is None:
        raise UsageError(f"{source}: harden fine-tunes a Keras model (.keras or .h5), not a SavedModel or ONNX")
    return src.keras


def _from_logits(model, x: np.ndarray) -> bool:
    """Scores that are not a distribution are logits (the audit's rule: runtime.output_score.output_signal)."""
    from ..runtime.output_score import output_signal

    return output_signal(_scores(model, x[:256])) == "energy"


def inspect(conn, source: str) -> dict[str, Any]:
    """The source's input shape and class count; UsageError unless it is a one-input classifier."""
    model = _load(source)
    if len(model.inputs) != 1 or len(model.outputs) != 1 or len(model.outputs[0].shape) != 2 \
            or (model.outputs[0].shape[-1] or 0) < 2:
        raise UsageError(f"{source}: harden takes classifiers with one input and one (batch, classes) output")
    return {"input_shape": tuple(-1 if d is None else int(d) for d in model.inputs[0].shape[1:]),
            "classes": int(model.outputs[0].shape[-1])}


def train(conn, source: str, out: str, x: np.ndarray, y: np.ndarray, *, epsilon: float, epochs: int, steps: int,
          value_range: tuple[float, float], learning_rate: float, batch_size: int, seed: int) -> list[dict]:
    """PGD adversarial training (Madry et al. 2018), each batch half clean, half PGD; saves the model to ``out``.

    The clean half keeps clean accuracy (Madry's all-adversarial loss costs it more); epsilon ramps up
    over the first third of the epochs, as a curriculum, so the first steps do not wreck the source's features.
    """
    from ..conversion.tf import import_keras
    from .attacks import pgd

    keras = import_keras()
    keras.utils.set_random_seed(seed)
    model = _load(source)
    logits = _from_logits(model, x)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=logits))
    gen = np.random.default_rng(seed)
    ramp = max(1, epochs // 3)
    batches = math.ceil(len(x) / batch_size)
    history = []
    for ep in range(epochs):
        eps = epsilon * min(1.0, (ep + 1) / ramp)
        order = gen.permutation(len(x))
        conn.send(("bar", f"epoch {ep + 1}/{epochs}", batches))
        losses = []
        for b in range(batches):
            idx = order[b * batch_size:(b + 1) * batch_size]
            xa = pgd(model, x[idx], y[idx], eps, value_range, steps=steps, seed=seed * 100_003 + ep * 1000 + b,
                     from_logits=logits)
            losses.append(float(model.train_on_batch(np.concatenate([x[idx], xa]), np.concatenate([y[idx], y[idx]]))))
            conn.send(("advance", 1))
        conn.send(("end",))
        history.append({"epoch": ep + 1, "epsilon": round(eps, 6), "loss": round(float(np.mean(losses)), 4)})
    model.save(out)
    return history


def convert(conn, source: str, out: str, *, recipe: str, calibration: Any, eval_data: tuple,
            labels: list[str] | None) -> str:
    """edgekit's own conversion path (edgekit.convert) with its accuracy check; the output's path."""
    from ..conversion import convert as run

    return str(run(source, out, recipe=recipe, calibration=calibration, eval_data=eval_data, labels=labels,
                   quiet=True, force=True).output)


def evaluate(conn, source: str, x: np.ndarray, y: np.ndarray, *, epsilons: list[float], steps: int,
             value_range: tuple[float, float], seed: int, label: str) -> dict[str, Any]:
    """Clean top-1 and, per epsilon, the PGD examples (attacks.pgd, as the audit runs it) and their top-1."""
    from .attacks import pgd

    model = _load(source)
    logits = _from_logits(model, x)
    out: dict[str, Any] = {"clean": _scores(model, x).argmax(axis=1), "adv": [], "adv_top1": []}
    conn.send(("bar", f"PGD {label}", len(epsilons)))
    for eps in epsilons:
        xa = pgd(model, x, y, eps, value_range, steps=steps, seed=seed, from_logits=logits)
        out["adv"].append(xa)
        out["adv_top1"].append(_scores(model, xa).argmax(axis=1))
        conn.send(("advance", 1))
    conn.send(("end",))
    return out


OPS = {"inspect": inspect, "train": train, "convert": convert, "evaluate": evaluate}


def _serve(conn) -> None:
    """Child: answer (op, kwargs) requests until the parent closes the pipe."""
    while True:
        try:
            op, kw = conn.recv()
        except EOFError:
            return
        if os.environ.get(CRASH_HOOK) == op:  # tests: a native crash in this op
            os.kill(os.getpid(), signal.SIGSEGV)
        try:
            conn.send(("ok", OPS[op](conn, **kw)))
        except EdgekitError as err:  # bad input (a SavedModel, an unreadable file): the parent re-raises it
            conn.send(("error", err))
        except Exception as err:  # a Python error in TensorFlow: a failed step, the child keeps serving
            conn.send(("failed", f"{type(err).__name__}: {err}".splitlines()[0][:300]))


class HardenWorker:
    """A spawned child for harden's TensorFlow work; ``call(op, **kw)`` runs one op there and draws its bars."""

    def __init__(self, progress: bool | None = None):
        self.progress = progress
        self.proc, self.conn = spawn(_serve, (), "edgekit-harden")

    def __enter__(self) -> "HardenWorker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, op: str, **kw) -> Any:
        try:
            self.conn.send((op, kw))
        except (BrokenPipeError, ConnectionError):
            pass  # the child is already dead: the receive below says how
        bar = None
        try:
            while True:
                try:
                    msg = self.conn.recv()
                except (EOFError, ConnectionError):
                    self.proc.join(10)
                    raise StageCrashed(op, self.proc.exitcode, hint=HINT) from None
                if msg[0] == "bar":
                    bar = Progress(msg[1], msg[2], enabled=self.progress).__enter__()
                elif msg[0] == "advance":
                    bar.advance(msg[1])
                elif msg[0] == "end":
                    bar, done = None, bar
                    done.__exit__(None, None, None)
                elif msg[0] == "ok":
                    return msg[1]
                elif msg[0] == "error":
                    raise msg[1]
                else:
                    raise StageCrashed(op, None, msg[1], hint=HINT)
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc, self.conn)
            self.proc = None
