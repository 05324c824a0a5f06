"""``run_audit``: load the model pair and its data, pick the audit for the task, run it.

Single-input classifiers get ``pipeline.Audit`` (accuracy, classes, transfer attacks from the source,
the backdoor probe); everything else (detectors, masks, regressions, several inputs) gets
``output_audit.OutputAudit``, which measures each output's deviation from its clean output.

Example:
    >>> doc = run_audit("digits-int8.tflite", "digits.keras", "eval.npz")   # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from .. import __version__
from ..data import load_dataset, load_named
from ..errors import UsageError
from ..progress import Progress
from . import governance
from .groups import load_groups
from .models import ModelPair
from .output_audit import OutputAudit
from .pipeline import Audit
from .thresholds import AuditThresholds, write_guard_thresholds


def run_audit(model: str | Path, source: str | Path | None, eval_data: Any, *, target: str | Path | None = None,
              ood: Sequence[Any] = (), calibration: Any = None, train: Any = None,
              thresholds: dict[str, float] | None = None, governance_file: str | Path | None = None,
              declared: dict[str, str | None] | None = None, profile: str | Path | None = None,
              write_threshold: bool = False, seed: int = 0, progress: bool | None = None,
              groups: Any = None) -> dict[str, Any]:
    """Audit ``model`` (a .tflite with its manifest), against its Keras ``source`` if given; the edgekit.audit/1 doc.

    eval_data / ood / calibration / train: paths (.npy/.npz/image folder), arrays or (x, y) tuples.
    thresholds: overrides of AuditThresholds fields (None values ignored); ``target`` a device
    profile whose optional ``[audit]`` table sets them first. write_threshold: store the suggested
    guard thresholds in the manifest. groups: one group label per eval sample (a .npy/.txt path or an
    array; default: the eval .npz's ``group`` array, if any): accuracy and the guard per group (groups.py).
    """
    t_all = time.perf_counter()
    limits = AuditThresholds.resolve(target, thresholds)
    decl = governance.load_declarations(governance_file, **(declared or {}))
    with Progress("loading", 1, enabled=progress) as bar:
        pair = ModelPair.load(model, source)
        bar.advance()
    try:
        pre = pair.manifest.preprocessing_for(pair.input_name)
        several = {n: pair.manifest.preprocessing_for(n) for n in pair.input_shapes}

        def load(d, what):
            if d is None:
                return None
            if len(pair.input_shapes) > 1:  # one array per input name
                return load_named(d, input_shapes=pair.input_shapes, preprocessing=several, what=what)
            return load_dataset(d, input_shape=pair.sample_shape, preprocessing=pre, what=what)

        ev = load(eval_data, "eval")
        calib = load(calibration, "calibration")
        tr = load(train, "training")
        oods = [load(d, "ood") for d in ood]
        prof = None
        if profile is not None:
            from ..profile.schema import load as load_profile_result

            prof = load_profile_result(profile)
        extra = {}
        if pair.classifier:
            extra["groups"] = load_groups(groups, eval_data, len(ev))
        elif groups is not None:
            raise UsageError(f"{model}: --groups compares top-1 accuracy per group and needs a classifier "
                             "(one input, class scores out)")
        kind = Audit if pair.classifier else OutputAudit
        audit = kind(pair, ev, thresholds=limits, seed=seed, ood=oods, calibration=calib, train=tr,
                     progress=progress, declared=decl, profile_doc=prof,
                     paths={"model": Path(model), "source": None if source is None else Path(source)}, **extra)
        doc = audit.run()
    finally:
        pair.close()
    if write_threshold:
        if "suggested" not in doc["guard"]:
            raise UsageError(f"{model}: --write-threshold: the guard stage did not run ({doc['guard']['skipped']})")
        s = doc["guard"]["suggested"]
        run = doc["governance"]["run"]
        mpath = write_guard_thresholds(model, {
            "ood_threshold": s["ood_threshold"], "output_signal": s["output_signal"],
            "output_threshold": s["output_threshold"], "target_fpr": s["target_fpr"],
            "measured_fpr": s["measured_fpr"],
            "set_by": f"edgekit audit {__version__} by {run['user']}@{run['host']} at {run['time']}"})
        doc["guard"]["written_to"] = str(mpath)
    doc["timings_s"]["total"] = round(time.perf_counter() - t_all, 2)
    return doc
