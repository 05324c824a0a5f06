"""``edgekit harden``: PGD adversarial fine-tuning of a Keras classifier, measured side by side with its source.

Training (Madry et al. 2018): every batch is half clean, half PGD examples made against the model
being trained (attacks.pgd, ``steps`` steps, epsilon ramped up over the first third of the epochs).
Then source and hardened model (and, with ``recipe``, their converted files made by edgekit.convert)
get clean accuracy and PGD robust accuracy at each epsilon, with the audit's attack (attacks.pgd, 10
steps, seeded start; the converted files get the examples made on their float model: transfer, as
the audit measures them). TensorFlow runs in a spawned child (harden_worker.py); the output is
written atomically, never over the source.

Example:
    >>> doc = harden("digits.keras", "digits-robust.keras", "train.npz", "eval.npz",
    ...              recipe="int8", calibration="calib.npz")                   # doctest: +SKIP
    >>> doc["gain_points"]["keras"] > 20, doc["clean_cost_points"]["keras"] < 3   # doctest: +SKIP
    (True, True)
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..data import Dataset, load_dataset
from ..errors import DataError, SourceModelError, UsageError
from ..manifest import manifest_path_for
from .harden_worker import HardenWorker
from .pipeline import EPSILONS, _subset
from .schema import check, verdict

SCHEMA = "edgekit.harden/1"
EVAL_STEPS = 10  # the audit's PGD, so `edgekit audit` on the hardened model shows the same figures
MAX_EVAL = 500  # a seeded subset beyond this: each epsilon costs EVAL_STEPS gradients per sample and model
CALIBRATION = 300  # samples of the training data used as calibration when none is given


def _paths(source: Path, output: Path, converted: Path | None, force: bool) -> None:
    if not source.exists():
        raise SourceModelError(f"{source}: no such file")
    if output.suffix != ".keras" or output.is_dir():
        raise UsageError(f"{output}: the hardened model is written as one Keras 3 file; give a file path ending "
                         "in .keras")
    for p in [output] + ([converted, manifest_path_for(converted)] if converted else []):
        if p.resolve() == source.resolve():
            raise UsageError(f"{p}: would overwrite the source model; choose another output path")
        if p.exists() and not force:
            raise UsageError(f"{p}: already exists; pass --force to replace it")


def _labelled(ds: Dataset, classes: int, what: str) -> np.ndarray:
    if ds.y is None:
        raise DataError(f"{ds.source}: {what} data needs labels y (class indices): an .npz with x and y")
    y = np.asarray(ds.y)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or np.all(np.mod(y, 1) == 0)):
        raise DataError(f"{ds.source}: {what} labels must be class indices (N,), got shape {y.shape} dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= classes:
        raise DataError(f"{ds.source}: {what} labels run {y.min()}..{y.max()} but the model has {classes} classes")
    return y


def _acc(top1: np.ndarray, y: np.ndarray) -> float:
    return round(float(np.mean(top1 == y)), 4)


def _converted_top1(path: str, xs: list[np.ndarray]) -> list[np.ndarray]:
    """Top-1 of the converted file through EdgeModel (the runtime that ships), for each batch in ``xs``."""
    from .models import ModelPair

    pair = ModelPair.load(path)
    try:
        return [pair.converted(x).top1 for x in xs]
    finally:
        pair.close()


def harden(source: str | Path, output: str | Path, train: Any, eval_data: Any, *,
           epsilons: Sequence[float] | None = None, train_epsilon: float | None = None, epochs: int = 10,
           steps: int = 7, learning_rate: float = 1e-3, batch_size: int = 64, recipe: str | None = None,
           calibration: Any = None, max_clean_cost: float = 3.0, min_gain: float = 10.0, seed: int = 0,
           force: bool = False, progress: bool | None = None) -> dict[str, Any]:
    """Fine-tune ``source`` with PGD adversarial training, write ``output`` (.keras), measure both; the
    ``edgekit.harden/1`` document.

    epsilons: L-infinity radii in input units to measure (default: 2, 5, 10 and 20% of the training
    data's value range, the audit's); train_epsilon: the radius trained against (default: the largest).
    recipe: also convert source and hardened model (the hardened one to OUTPUT-RECIPE.tflite) and
    measure the converted files; calibration: its data (default: 300 training samples).
    Checks (exit 1 when one fails; the model is written either way): the robust accuracy gain at the
    largest epsilon is at least ``min_gain`` points, and the clean cost at most ``max_clean_cost``.
    """
    t0 = time.perf_counter()
    source, output = Path(source), Path(output)
    converted = output.with_name(f"{output.stem}-{recipe}.tflite") if recipe else None
    _paths(source, output, converted, force)
    if recipe is not None:
        from ..recipes import load_recipe

        load_recipe(recipe)  # an unknown recipe is bad input now, not after the training
    elif calibration is not None:
        raise UsageError("--calibration is for the conversion: give --recipe too (e.g. --recipe int8)")
    if train_epsilon is not None and train_epsilon <= 0:
        raise UsageError(f"--train-epsilon must be above 0, got {train_epsilon}")
    if epochs < 1 or steps < 1 or batch_size < 1:
        raise UsageError(f"--epochs, --steps and --batch-size must be at least 1 (got {epochs}, {steps}, {batch_size})")
    if not 0 < learning_rate < 1:
        raise UsageError(f"--learning-rate {learning_rate} must be between 0 and 1")
    timings: dict[str, float] = {}
    with HardenWorker(progress) as worker:
        info = worker.call("inspect", source=str(source))
        shape = info["input_shape"]
        tr = load_dataset(train, input_shape=shape, what="training")
        ev = load_dataset(eval_data, input_shape=shape, what="eval")
        y_tr, y_ev = _labelled(tr, info["classes"], "training"), _labelled(ev, info["classes"], "eval")
        lo, hi = float(tr.x.min()), float(tr.x.max())
        span = hi - lo
        eps = sorted(float(e) for e in (epsilons or [s * span for s in EPSILONS]))
        if not eps or eps[0] <= 0 or eps[-1] >= span:
            raise UsageError(f"--epsilon values must be above 0 and below the data's value range {span:g} "
                             f"(input units, L-infinity), got {eps}")
        t_eps = eps[-1] if train_epsilon is None else float(train_epsilon)
        keep = _subset(len(ev), MAX_EVAL, seed)
        x_ev, y_ev = ev.x[keep], y_ev[keep]
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(f".{output.stem}.{os.getpid()}.tmp.keras")  # Keras wants the suffix
        try:
            t = time.perf_counter()
            history = worker.call("train", source=str(source), out=str(tmp), x=tr.x, y=y_tr, epsilon=t_eps,
                                  epochs=epochs, steps=steps, value_range=(lo, hi), learning_rate=learning_rate,
                                  batch_size=batch_size, seed=seed)
            os.replace(tmp, output)  # same folder: an atomic rename, so OUTPUT is whole or absent
            timings["train"] = round(time.perf_counter() - t, 2)
        finally:
            tmp.unlink(missing_ok=True)
        models = {"source": str(source), "hardened": str(output)}
        files: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="edgekit-harden-") as scratch:
            if recipe:
                t = time.perf_counter()
                calib = calibration if calibration is not None else tr.x[_subset(len(tr), CALIBRATION, seed)]
                for name, out in (("source", Path(scratch) / f"source-{recipe}.tflite"), ("hardened", converted)):
                    files[name] = worker.call("convert", source=models[name], out=str(out), recipe=recipe,
                                              calibration=calib, eval_data=(x_ev, y_ev), labels=ev.labels)
                timings["convert"] = round(time.perf_counter() - t, 2)
            t = time.perf_counter()
            rows = []
            for name, path in models.items():
                res = worker.call("evaluate", source=path, x=x_ev, y=y_ev, epsilons=eps, steps=EVAL_STEPS,
                                  value_range=(lo, hi), seed=seed, label=name)
                rows.append({"model": name, "format": "keras", "path": path, "clean": _acc(res["clean"], y_ev),
                             "robust": [_acc(t1, y_ev) for t1 in res["adv_top1"]]})
                if name in files:
                    top = _converted_top1(files[name], [x_ev] + res["adv"])
                    rows.append({"model": name, "format": recipe, "path": files[name] if name == "hardened" else None,
                                 "clean": _acc(top[0], y_ev), "robust": [_acc(t1, y_ev) for t1 in top[1:]]})
            timings["evaluate"] = round(time.perf_counter() - t, 2)
    return _document(rows, eps, span, history, {
        "source": str(source), "output": str(output), "converted": None if converted is None else str(converted),
        "recipe": recipe, "train_epsilon": t_eps, "epochs": epochs, "steps": steps, "learning_rate": learning_rate,
        "batch_size": batch_size, "seed": seed, "train_samples": len(tr), "eval_samples": int(len(x_ev)),
        "eval_sampled": None if len(keep) == len(ev) else f"{len(keep)} of {len(ev)} eval samples (seeded subset)",
        "value_range": [lo, hi]}, max_clean_cost, min_gain, timings, t0)


def _document(rows: list[dict], eps: list[float], span: float, history: list[dict], settings: dict,
              max_clean_cost: float, min_gain: float, timings: dict, t0: float) -> dict[str, Any]:
    by = {(r["model"], r["format"]): r for r in rows}
    gain, cost, checks = {}, {}, []
    for fmt in dict.fromkeys(r["format"] for r in rows):
        src, hard = by[("source", fmt)], by[("hardened", fmt)]
        gain[fmt] = round(100 * (hard["robust"][-1] - src["robust"][-1]), 2)
        cost[fmt] = round(100 * (src["clean"] - hard["clean"]), 2)
    gate = settings["recipe"] or "keras"  # the file that ships, when there is one
    checks.append(check("harden.robust_gain", "harden", gain[gate], min_gain, ">=", "points",
                        note=f"{gate}: PGD robust accuracy at epsilon {eps[-1]:g}, hardened minus source"))
    checks.append(check("harden.clean_cost", "harden", cost[gate], max_clean_cost, "<=", "points",
                        note=f"{gate}: clean accuracy, source minus hardened"))
    timings["total"] = round(time.perf_counter() - t0, 2)
    return {"schema": SCHEMA, "settings": settings,
            "epsilons": [round(e, 6) for e in eps], "epsilon_shares": [round(e / span, 4) for e in eps],
            "rows": rows, "gain_points": gain, "clean_cost_points": cost, "training": history,
            "checks": checks, "verdict": verdict(checks), "timings_s": timings,
            "method": (f"training: Madry et al. 2018 PGD ({settings['steps']} steps, epsilon "
                       f"{settings['train_epsilon']:g} ramped over the first third of the epochs), each batch half "
                       "clean, half adversarial; "
                       f"measure: PGD {EVAL_STEPS} steps, step 2.5*eps/{EVAL_STEPS}, seeded random start, on each "
                       "float model (white-box); its converted file gets the same examples (transfer, as the audit)")}


def table(doc: dict[str, Any]) -> str:
    """The side-by-side text the CLI prints."""
    s = doc["settings"]
    head = f"{'model':10} {'format':8} {'clean':>7}" + "".join(f" {'eps ' + format(e, 'g'):>10}"
                                                               for e in doc["epsilons"])
    lines = [f"harden {s['source']} -> {s['output']}: {s['epochs']} epochs, PGD eps {s['train_epsilon']:g} "
             f"({s['steps']} steps), half clean / half adversarial batches; {s['eval_samples']} eval samples",
             head]
    for r in doc["rows"]:
        lines.append(f"{r['model']:10} {r['format']:8} {100 * r['clean']:6.1f}%"
                     + "".join(f" {100 * v:9.1f}%" for v in r["robust"]))
    e = doc["epsilons"][-1]
    for fmt in doc["gain_points"]:
        lines.append(f"{fmt}: robust accuracy at eps {e:g} {doc['gain_points'][fmt]:+.1f} points, clean cost "
                     f"{doc['clean_cost_points'][fmt]:.1f} points")
    for c in doc["checks"]:
        lines.append(f"  {'ok  ' if c['passed'] else 'FAIL'} {c['name']:20} {c['value']:+.2f} {c['op']} "
                     f"{c['threshold']:g} points ({c['note']})")
    lines.append(f"wrote {s['output']}" + (f" and {s['converted']}" if s["converted"] else "")
                 + f" in {doc['timings_s']['total']:.0f} s")
    return "\n".join(lines)
