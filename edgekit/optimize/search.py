"""``edgekit.optimize.optimize``: try the candidates, measure them, pick one, write it with its manifest.

1. Conversions (each candidate's trial: edgekit.convert + accuracy + size) run in
   parallel workers; every finished trial is journalled in ``OUT.optimize/journal.jsonl``
   and its files kept under ``OUT.optimize/trials/``, so an interrupted run resumes.
   The ``int8-float-io`` trial also runs the per-layer debugger; its ranking makes the
   "int8 with the top-k layers in float" candidates, submitted as soon as it finishes.
2. Latency of every candidate that converted, one after another on the same machine
   (never journalled: figures from different runs are not comparable).
3. The budget-meeting candidates within 25 % of the fastest run again head to head,
   interleaved, and the rule in pareto.py picks on those figures.

Example:
    >>> res = optimize("digits.keras", "digits.tflite", calibration="calib.npz",   # doctest: +SKIP
    ...                eval_data="eval.npz", budgets=Budgets(max_drop_points=1.0))
    >>> res.selection.pick["name"], res.output                                         # doctest: +SKIP
    ('dynamic', PosixPath('digits.tflite'))
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from .. import waiting
from ..conversion.pipeline import _labels
from ..errors import DataError, SourceModelError, UsageError
from ..fsutil import atomic_write_bytes, atomic_write_text
from ..manifest import manifest_path_for
from .executor import make_executor
from .journal import Journal, input_hashes, trial_key
from .pareto import Budgets, Selection, contenders, select
from .space import (ENGINES, FLOAT_TOP_K, Candidate, base_candidates, file_name, float_bases, float_layer_candidates,
                    onnx_candidates, select_names)
from .trials import LatencySettings, TrialInputs, head_to_head, profile_once, run_trial

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
H2H_WITHIN = 0.25  # candidates this close to the fastest get the head-to-head run

# on_event(phase, done, total): the CLI draws its progress bar from it
EventFn = Callable[[str, int, int], None]


@dataclass
class OptimizeResult:
    rows: list[dict[str, Any]]
    selection: Selection
    budgets: Budgets
    output: Path | None  # None when no candidate met every budget
    work_dir: Path
    ran: int  # trials converted in this run
    reused: int  # trials taken from the journal
    executor: str
    latency_where: str
    debug: dict[str, Any] | None = None  # the first engine's debugger ranking
    notes: list[str] = field(default_factory=list)
    engines: list[str] = field(default_factory=lambda: ["tflite"])
    debug_reports: dict[str, Any] = field(default_factory=dict)  # engine -> its ranking

    @property
    def pick(self) -> dict[str, Any] | None:
        return self.selection.pick

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "edgekit.optimize/1", "output": str(self.output) if self.output else None,
                "budgets": self.budgets.to_dict(), "selection": self.selection.to_dict(), "rows": self.rows,
                "work_dir": str(self.work_dir), "trials_run": self.ran, "trials_reused": self.reused,
                "executor": self.executor, "latency_where": self.latency_where,
                "speed_rule": "fastest p50 among budget-meeting candidates; within 5% counts as equal, "
                              "then smaller size", "debug": self.debug, "notes": self.notes,
                "engines": self.engines, "debug_reports": self.debug_reports}


def work_dir_for(output: Path) -> Path:
    return output.with_name(f"{output.stem}.optimize")


def engines_for(source: Path, output: Path, engines: Sequence[str] | None) -> list[str]:
    """The engines to search: ``engines`` as given (checked), else the one OUT's suffix names."""
    if output.suffix not in (".tflite", ".onnx"):
        raise UsageError(f"{output}: the output file must end in .tflite (or .onnx for ONNX Runtime)")
    chosen = list(engines) if engines else ["onnx" if output.suffix == ".onnx" else "tflite"]
    unknown = [e for e in chosen if e not in ENGINES]
    if unknown or not chosen:
        raise UsageError(f"--engines {','.join(chosen)}: choose from {', '.join(ENGINES)} (comma-separated)")
    if source.suffix.lower() == ".onnx" and "tflite" in chosen:
        raise UsageError(f"{source}: an ONNX source converts to .onnx only; use --engines onnx (or -o OUT.onnx)")
    if source.is_dir() and "onnx" in chosen:
        raise UsageError(f"{source}: ONNX candidates need a Keras (.keras, .h5) or ONNX source, not a SavedModel")
    return [e for e in ENGINES if e in chosen]


def _check(source: Path, output: Path, eval_data, force: bool, engines: Sequence[str]) -> None:
    if not source.exists():
        raise SourceModelError(f"{source}: no such file or folder")
    for engine in engines:  # the pick is written with its engine's suffix
        out = output.with_name(file_name(output.name, engine))
        if out.resolve() == source.resolve():
            raise UsageError(f"{out}: would overwrite the source model; choose another output path")
        if out.exists() and not force:
            raise UsageError(f"{out}: already exists; pass --force to replace it")
    if eval_data is None:
        raise UsageError("optimize needs --eval data to measure each candidate's accuracy drop "
                         "(.npz with x, and y when there are labels)")
    for name, p in (("eval", eval_data),):
        if not Path(p).exists():
            raise UsageError(f"{p}: {name} data not found")


def _check_scaling(normalize: str | None, calibration) -> None:
    """Refuse a --normalize that one-array image calibration data contradicts, before any trial runs
    (each trial's convert checks it too; this says it once, with exit 2, instead of N failed trials)."""
    from ..data import load_dataset
    from ..scaling import data_evidence, decide

    if normalize is None or calibration is None or Path(calibration).suffix not in (".npy", ".npz"):
        decide(normalize, [], fallback="0-1")  # an unknown preset name is still refused here
        return
    try:
        x = load_dataset(calibration, what="calibration").x
    except DataError:
        return  # several named inputs: each trial's convert checks them by name
    if x.ndim == 4 and x.shape[-1] in (1, 3):  # (N, H, W, C) images: the inputs --normalize scales
        decide(normalize, [data_evidence(f"the calibration data ({calibration})", x)])


def _trial_dir(work: Path, cand: Candidate, key: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cand.name)[:60]
    return work / "trials" / f"{safe}-{key[:10]}"


def optimize(
    source: str | Path,
    output: str | Path,
    *,
    calibration: str | Path | None = None,
    eval_data: str | Path | None = None,
    train_data: str | Path | None = None,
    target: str | None = None,
    budgets: Budgets | None = None,
    candidates: Sequence[str] | None = None,
    float_top_k: int = FLOAT_TOP_K,
    workers: int | None = None,
    ray: str | None = None,
    latency: LatencySettings | None = None,
    h2h_rounds: int = 5,
    compat: str | None = None,
    fine_tune_epochs: int = 2,
    normalize: str | None = None,
    labels: Sequence[str] | str | Path | None = None,
    force: bool = False,
    on_event: EventFn | None = None,
    engines: Sequence[str] | None = None,
) -> OptimizeResult:
    """Search the candidates for ``source`` and write the best budget-meeting one to ``output``.

    Data arguments are file paths (.npz / .npy / image folders), as for ``edgekit convert``;
    so are ``normalize`` (checked against numeric calibration data before any trial) and ``labels``.
    ``engines``: tflite, onnx or both (one table, one rule); None: the engine OUT's suffix names. The
    pick is written to OUT with its own engine's suffix (``-o m.tflite`` and an ONNX pick: ``m.onnx``).
    """
    source, output = Path(source), Path(output)
    engines = engines_for(source, output, engines)
    _check(source, output, eval_data, force, engines)
    _check_scaling(normalize, calibration)
    label_list = _labels(labels, [])
    budgets = budgets or Budgets()
    if budgets.max_latency_ms is None and target:
        from ..devices import load_profile

        budgets = Budgets(budgets.max_drop_points, getattr(load_profile(target), "max_latency_ms", None),
                          budgets.max_size_kb)
    lat = latency or LatencySettings()
    work = work_dir_for(output)
    journal = Journal(work / "journal.jsonl")
    inputs = TrialInputs(str(source.resolve()), *(str(Path(p).resolve()) if p else None
                                                  for p in (calibration, eval_data, train_data)),
                         out_name=output.name, target=target, compat=compat, fine_tune_epochs=fine_tune_epochs,
                         normalize=normalize, labels=tuple(label_list) if label_list else None)
    hashes = input_hashes(source=source, calibration=calibration, eval=eval_data, train=train_data)
    keras = source.suffix.lower() in KERAS_SUFFIXES
    base = base_candidates(calibration=calibration is not None, keras=keras,
                           train=train_data is not None) if "tflite" in engines else []
    if "onnx" in engines:
        base += onnx_candidates(calibration=calibration is not None)
    todo = select_names(base, candidates)
    if candidates and not todo:
        names = ", ".join(c.name for c in base)
        raise UsageError(f"--candidates {','.join(candidates)}: none of these apply here; choose from {names}")

    done = journal.done()
    rows: dict[str, dict[str, Any]] = {}
    reports: dict[str, dict[str, Any]] = {}  # engine -> its debugger's ranking
    ran = reused = 0
    pending: dict[Future, tuple[Candidate, str]] = {}
    order: list[str] = []  # candidates in the order they were started (base list, then float variants)
    total = len(todo)

    def emit(phase: str, n: int, of: int) -> None:
        if on_event:
            on_event(phase, n, of)

    def keyed(c: Candidate) -> str:
        return trial_key({**c.params(), **inputs.settings()}, hashes)

    def finished(c: Candidate, key: str, res: dict[str, Any]) -> None:
        nonlocal total
        row = {"name": c.name, "key": key, **c.params(), **res}
        rows[c.name] = row
        if c.debug and res.get("debug") and float_top_k > 0:
            reports[c.engine] = res["debug"]
            ranked = list(dict.fromkeys(e.get("name") or e["layer"] or e["tensor"] for e in res["debug"]["layers"]))
            extra = float_layer_candidates(ranked, float_top_k, float_bases(c))
            total += len(extra)
            for e in extra:
                start(e)
        emit("trials", len(rows), total)

    def start(c: Candidate) -> None:
        nonlocal reused
        order.append(c.name)
        key = keyed(c)
        prev = done.get(key)
        folder = _trial_dir(work, c, key)
        if prev is not None and (prev.get("error") or (folder / file_name(output.name, c.engine)).is_file()):
            reused += 1
            finished(c, key, {**prev, "reused": True})
            return
        pending[ex.submit(run_trial, c.to_dict(), shared)] = (c, key)

    emit("trials", 0, total)
    t0 = time.perf_counter()
    with make_executor(ray, workers) as ex:
        shared = ex.share(inputs)
        for c in todo:
            start(c)
        while pending:
            fin = waiting.wait_first(pending)  # in slices: Ctrl-C on any thread
            for fut in fin:
                c, key = pending.pop(fut)
                try:
                    out = waiting.result(fut)
                except Exception as err:  # the worker died (e.g. a crash inside the converter): not journalled
                    finished(c, key, {"error": f"the trial's process failed: {type(err).__name__}: {err}"[:300],
                                      "reused": False})
                    continue
                res = out["result"]
                if "model" in out:
                    path = _trial_dir(work, c, key) / file_name(output.name, c.engine)
                    atomic_write_bytes(path, out["model"])
                    atomic_write_text(manifest_path_for(path), out["manifest"])
                    res["path"] = str(path)
                journal.append(key, c.name, res)  # after the files: a journalled trial has them
                ran += 1
                finished(c, key, {**res, "reused": False})
    search_seconds = time.perf_counter() - t0

    ordered = [rows[n] for n in order]
    measured = [r for r in ordered if not r.get("error")]
    for i, r in enumerate(measured):
        emit("latency", i, len(measured))
        r["latency"] = profile_once(Path(r["path"]), lat)
    emit("latency", len(measured), len(measured))

    finalists = contenders(measured, budgets, H2H_WITHIN)
    if len(finalists) > 1 and h2h_rounds > 0:
        steps = [0]
        total_steps = len(finalists) * h2h_rounds

        def step():
            steps[0] += 1
            emit("head-to-head", steps[0], total_steps)

        h2h = head_to_head({r["name"]: Path(r["path"]) for r in finalists}, lat, rounds=h2h_rounds, on_step=step)
        for r in finalists:
            r["h2h_p50"] = h2h[r["name"]]["p50"]
            r["h2h_rounds_p50"] = h2h[r["name"]]["rounds"]

    fp32 = {r.get("engine", "tflite"): r for r in measured if r["recipe"] == "fp32" and not r.get("prune")}
    for r in measured:  # against the same engine's float file: an .onnx carries names and shapes a .tflite does not
        ref = fp32.get(r.get("engine", "tflite"))
        r["size_ratio_fp32"] = r["size_bytes"] / ref["size_bytes"] if ref else None
    selection = select(ordered, budgets)
    written = None
    if selection.pick is not None:
        src = Path(selection.pick["path"])
        written = output.with_name(file_name(output.name, selection.pick.get("engine", "tflite")))
        atomic_write_bytes(written, src.read_bytes())
        atomic_write_text(manifest_path_for(written), manifest_path_for(src).read_text(encoding="utf-8"))
    debug = next((reports[e] for e in engines if e in reports), None)  # the first engine's, as before
    notes = [f"conversions took {search_seconds:.1f} s"]
    if target and not lat.host:  # speeds rank differently on another CPU: say whose speed this is
        notes.append(f"ranked by this machine's speed, not {target}'s: pass --host to measure on the device")
    result = OptimizeResult(ordered, selection, budgets, written, work, ran, reused, ex.kind, lat.where,
                            debug, notes, engines, reports)
    atomic_write_text(work / "results.json", json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    for engine, report in reports.items():
        name = "debug.json" if report is debug else f"debug-{engine}.json"
        atomic_write_text(work / name, json.dumps(report, indent=2) + "\n")
    return result
