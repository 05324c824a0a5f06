"""``edgekit.audit.run_audit``: every stage of the deployment safety report, each with a progress bar.

Stages: load -> accuracy -> robustness -> adversarial -> blackbox -> classes -> groups -> guard ->
backdoor -> data -> governance. Each adds a section and its checks to one ``edgekit.audit/1``
document (schema.py). The converted model runs through EdgeModel (models.py); the
optional Keras source gives the reference answers and the transfer attacks' gradients,
in a child process (source_worker.py): a native TensorFlow crash fails that stage only.
Without a source, every check that needs no gradients still runs (blackbox attacks the
converted file with queries only).

Example:
    >>> doc = run_audit("digits-int8.tflite", "digits.keras", "eval.npz")   # doctest: +SKIP
    >>> doc["verdict"]["passed"], [c["name"] for c in doc["checks"]][:2]    # doctest: +SKIP
    (True, ['accuracy.drop', 'robustness.max_gap'])
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..data import Dataset
from ..errors import DataError
from ..progress import Progress
from ..runtime.output_score import output_score, output_signal
from . import backdoor, classes, datacheck, governance, groups as groups_mod, guard_roc, perturb
from .attacks import ATTACKS
from .blackbox import square_attack
from .models import ModelPair, Outcome
from .source_worker import HINT, StageCrashed
from .schema import SCHEMA, check, verdict
from .thresholds import AuditThresholds

EPSILONS = (0.02, 0.05, 0.1, 0.2)  # L-inf attack radius as a share of the value range
MAX_EVAL = 2000  # more samples add time, not much certainty, to a per-strength accuracy
MAX_ATTACK = 500  # attacks cost gradients: a subset is enough to measure a drop of 30 points
ATTACK_VALUES = 400_000  # ... and their cost grows with the input: 500 8x8 digits, 100 64x64 images
MIN_ATTACK = 100
MAX_PROBE = 500
MAX_BLACKBOX = 100  # each query step runs every live sample through the file: 100 x 200 x 4 runs at most
BLACKBOX_VALUES = 200_000  # ... and a run costs more on larger inputs: 100 8x8 digits, 50 64x64 images
MIN_BLACKBOX = 50
BLACKBOX_QUERIES = 200  # query budget per sample and epsilon
MIN_EVAL = 20  # below this, a per-class accuracy or a 1% false-positive rate means nothing


def _r(v: float, nd: int = 4) -> float:
    return round(float(v), nd)


def _subset(n: int, cap: int, seed: int) -> np.ndarray:
    return np.arange(n) if n <= cap else np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


def value_range(manifest, input_name: str, x: np.ndarray) -> tuple[tuple[float, float], str]:
    """The input's value range: the calibration min/max from the manifest, else the eval data's."""
    stats = manifest.input_stats(input_name) if manifest is not None else None
    if stats is not None:
        return (float(np.min(stats.min)), float(np.max(stats.max))), "manifest calibration statistics"
    return (float(x.min()), float(x.max())), "eval data (no calibration statistics in the manifest)"


class Audit:
    """One audit run; ``run()`` returns the document. Use ``run_audit``."""

    def __init__(self, pair: ModelPair, ev: Dataset, *, thresholds: AuditThresholds, seed: int,
                 ood: Sequence[Dataset], calibration: Dataset | None, train: Dataset | None,
                 progress: bool | None, declared: dict, profile_doc: dict | None, paths: dict,
                 groups: np.ndarray | None = None):
        self.pair, self.ev, self.t, self.seed = pair, ev, thresholds, seed
        self.ood_user, self.calib, self.train = list(ood), calibration, train
        self.progress, self.declared, self.profile_doc, self.paths = progress, declared, profile_doc, paths
        if len(ev) < MIN_EVAL:
            raise DataError(f"{ev.source}: only {len(ev)} eval samples; the audit needs at least {MIN_EVAL} "
                            "(a few hundred for rates near 1%)")
        self.checks: list[dict[str, Any]] = []
        self.stage = "reference"  # the stage running now: names a crash of the source's process
        self.timings: dict[str, float] = {}
        keep = _subset(len(ev), MAX_EVAL, seed)
        self.eval_note = None if len(keep) == len(ev) else f"{len(keep)} of {len(ev)} eval samples (seeded subset)"
        self.take_inputs(keep)
        self.group_labels = None if groups is None else np.asarray(groups)[keep]  # one label per eval sample
        self.labels = pair.edge.labels

    def take_inputs(self, keep: np.ndarray) -> None:
        """The eval samples the audit uses, their value range and whether they are images."""
        self.x = self.ev.x[keep]
        self.range, self.range_from = value_range(self.pair.manifest, self.pair.edge.runner.input.name, self.x)
        self.image = perturb.is_image(self.pair.sample_shape)

    def bar(self, label: str, total: int) -> Progress:
        return Progress(label, total, enabled=self.progress)

    def add(self, *args, **kw) -> None:
        self.checks.append(check(*args, **kw))

    # ---- stages ------------------------------------------------------------------
    def _source(self, x: np.ndarray) -> np.ndarray:
        return self.pair.source_scores(x, self.stage)

    def reference(self) -> dict[str, Any]:
        self.conv_clean: Outcome = self.pair.converted(self.x)
        self.src_clean = None
        scores = self.conv_clean.scores
        if self.pair.source is not None:
            scores = self._source(self.x)
            self.src_clean = scores.argmax(axis=1)
        self.from_logits = output_signal(scores) == "energy"
        n_classes = scores.shape[1]
        if self.ev.y is not None:
            y = np.asarray(self.ev.y)[_subset(len(self.ev), MAX_EVAL, self.seed)]
            if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) and not np.all(np.mod(y, 1) == 0):
                raise DataError(f"{self.ev.source}: labels y must be class indices (N,), got shape {y.shape} "
                                f"dtype {y.dtype}")
            y = y.astype(np.int64)
            if y.min() < 0 or y.max() >= n_classes:
                raise DataError(f"{self.ev.source}: labels run {y.min()}..{y.max()} but the model has "
                                f"{n_classes} classes")
            self.y, kind = y, "labels"
            note = "accuracy against the eval data's labels"
        elif self.src_clean is not None:
            self.y, kind = self.src_clean.copy(), "source_top1"
            note = ("the eval data has no labels: the source model's top-1 is the reference label, so the "
                    "source scores 100% clean by definition and every figure is agreement with it")
        else:
            self.y, kind = self.conv_clean.top1.copy(), "converted_top1"
            note = ("no labels and no source: the converted model's own clean top-1 is the reference, so it "
                    "scores 100% clean by definition and every figure is agreement with its clean answers")
        return {"kind": kind, "note": note, "samples": int(len(self.x)), "subset_note": self.eval_note,
                "value_range": list(self.range), "value_range_from": self.range_from}

    def accuracy(self) -> dict[str, Any]:
        conv = float(np.mean(self.conv_clean.top1 == self.y))
        if self.src_clean is None:
            return {"source": None, "converted": _r(conv), "drop_points": None, "agreement": None}
        src = float(np.mean(self.src_clean == self.y))
        drop = 100.0 * (src - conv)
        self.add("accuracy.drop", "accuracy", drop, self.t.max_accuracy_drop_points, "<=", "points",
                 note=f"clean top-1 source {src:.2%}, converted {conv:.2%}")
        return {"source": _r(src), "converted": _r(conv), "drop_points": _r(drop, 2),
                "agreement": _r(np.mean(self.src_clean == self.conv_clean.top1))}

    def robustness(self) -> dict[str, Any]:
        perts = perturb.applicable(self.pair.sample_shape)
        total = sum(len(p.strengths) for p in perts)
        rows: dict[str, Any] = {}
        worst: tuple[float, str] = (-np.inf, "")
        with self.bar("robustness", total) as bar:
            for i, p in enumerate(perts):
                gen = np.random.default_rng([self.seed, i])
                pts = []
                for s in p.strengths:
                    xp = p.apply(self.x, s, self.range, gen)
                    out = self.pair.converted(xp)
                    conv = float(np.mean(out.top1 == self.y))
                    src = gap = None
                    if self.src_clean is not None:
                        src = float(np.mean(self._source(xp).argmax(axis=1) == self.y))
                        gap = 100.0 * (src - conv)
                        worst = max(worst, (gap, f"{p.name} {s:g}"))
                    pts.append({"strength": s, "source": None if src is None else _r(src), "converted": _r(conv),
                                "gap_points": None if gap is None else _r(gap, 2), "flagged": _r(out.flagged.mean())})
                    bar.advance()
                rows[p.name] = {"unit": p.unit, "points": pts}
        if self.src_clean is not None:
            self.add("robustness.max_gap", "robustness", worst[0], self.t.max_robustness_gap_points, "<=", "points",
                     note=f"largest source-minus-converted accuracy gap: {worst[1]}")
        skipped = None if self.image else "image corruptions skipped: the input is not (H, W, 1 or 3)"
        return {"perturbations": rows, "note": skipped,
                "method": "each corruption on every eval sample, seeded; accuracy against the reference"}

    def adversarial(self) -> dict[str, Any]:
        if self.src_clean is None:
            return {"skipped": "no source model: transfer attacks need its gradients (the blackbox section "
                               "attacks the converted file itself)"}
        cap = int(np.clip(ATTACK_VALUES // max(1, int(np.prod(self.pair.sample_shape))), MIN_ATTACK, MAX_ATTACK))
        idx = _subset(len(self.x), cap, self.seed + 1)
        x, y = self.x[idx], self.y[idx]
        span = self.range[1] - self.range[0]
        src0, conv0 = float(np.mean(self.src_clean[idx] == y)), float(np.mean(self.conv_clean.top1[idx] == y))
        rows: dict[str, list] = {}
        with self.bar("adversarial", len(ATTACKS) * len(EPSILONS)) as bar:
            for name in ATTACKS:
                rows[name] = []
                for share in EPSILONS:
                    eps = share * span
                    kw = {"seed": self.seed} if name == "pgd" else {}
                    xa = self.pair.attack(self.stage, name, x, y, eps, self.range, from_logits=self.from_logits, **kw)
                    src = float(np.mean(self._source(xa).argmax(axis=1) == y))
                    conv = float(np.mean(self.pair.converted(xa).top1 == y))
                    src_drop, conv_drop = 100 * (src0 - src), 100 * (conv0 - conv)
                    rows[name].append({
                        "epsilon": _r(eps, 6), "epsilon_share": share, "source": _r(src), "converted": _r(conv),
                        "source_drop_points": _r(src_drop, 2), "converted_drop_points": _r(conv_drop, 2),
                        # share of the attack's damage on the source that the int8 file also suffers
                        "transfer": None if src_drop <= 0 else _r(conv_drop / src_drop),
                        "gap_points": _r(100 * (src - conv), 2)})
                    bar.advance()
        strongest = max((r for rs in rows.values() for r in rs), key=lambda r: r["source_drop_points"])
        gap = max(r["gap_points"] for rs in rows.values() for r in rs)
        self.add("adversarial.attack_strength", "adversarial", strongest["source_drop_points"],
                 self.t.min_attack_drop_points, ">=", "points", gate=False,
                 note="evidence check: the strongest attack must hurt the source model, or the transfer "
                      "figures prove little")
        self.add("adversarial.max_gap", "adversarial", gap, self.t.max_adversarial_gap_points, "<=", "points",
                 note="converted model no weaker than the source on the same adversarial inputs")
        sampled = (f"{len(idx)} of {len(self.x)} eval samples (seeded subset; gradient attacks cost more on "
                   "larger inputs)")
        return {"attacks": rows, "samples": int(len(idx)), "sampled": sampled, "clean_source": _r(src0),
                "clean_converted": _r(conv0),
                "epsilon_unit": "input units (L-infinity), listed with their share of the value range",
                "method": "FGSM and PGD (10 steps, step 2.5*eps/10, seeded random start) with the source "
                          "model's TensorFlow gradients; the same inputs then fed to the converted model"}

    def blackbox(self) -> dict[str, Any]:
        """Square Attack on the converted file through EdgeModel: robust accuracy per epsilon, no source needed."""
        values = max(1, int(np.prod(self.pair.sample_shape)))
        idx = _subset(len(self.x), int(np.clip(BLACKBOX_VALUES // values, MIN_BLACKBOX, MAX_BLACKBOX)), self.seed + 3)
        x, y = self.x[idx], self.y[idx]
        span = self.range[1] - self.range[0]
        clean = float(np.mean(self.conv_clean.top1[idx] == y))
        rows = []
        with self.bar("blackbox", len(EPSILONS) * BLACKBOX_QUERIES) as bar:
            for i, share in enumerate(EPSILONS):
                xa = square_attack(lambda b: self.pair.converted(b).scores, x, y, share * span, self.range,
                                   queries=BLACKBOX_QUERIES, seed=self.seed + i, logits=self.from_logits,
                                   on_query=bar.advance)
                bar.advance((i + 1) * BLACKBOX_QUERIES - bar.done)  # the attack stops early once all are fooled
                out = self.pair.converted(xa)
                acc = float(np.mean(out.top1 == y))
                rows.append({"epsilon": _r(share * span, 6), "epsilon_share": share, "converted": _r(acc),
                             "drop_points": _r(100 * (clean - acc), 2), "flagged": _r(out.flagged.mean())})
        strongest = max(rows, key=lambda r: r["drop_points"])
        self.add("blackbox.attack_strength", "blackbox", strongest["drop_points"], self.t.min_attack_drop_points,
                 ">=", "points", gate=False,
                 note="evidence, not a gate: how far a query-only attacker moves the file that ships; "
                      "an int8 file with no defence is expected to fall")
        return {"attacks": {"square": rows}, "samples": int(len(idx)), "queries": BLACKBOX_QUERIES,
                "clean_converted": _r(clean), "sampled": f"{len(idx)} of {len(self.x)} eval samples (seeded subset), "
                                                         f"{BLACKBOX_QUERIES} queries each per epsilon",
                "epsilon_unit": "input units (L-infinity), listed with their share of the value range",
                "method": "Square Attack (Andriushchenko et al. 2020, L-infinity, margin loss) on the converted "
                          "model's scores through EdgeModel: queries only, no gradients, no source"}

    def classes(self) -> dict[str, Any]:
        if self.src_clean is None:
            return {"skipped": "no source model to compare each class against"}
        res = classes.per_class(self.y, self.src_clean, self.conv_clean.top1, self.labels)
        w = res["worst"]
        self.add("classes.worst_drop", "classes", w["drop_points"], self.t.max_class_drop_points, "<=", "points",
                 note=f"class {w['label']}: {w['source']:.1%} -> {w['converted']:.1%} on {w['samples']} samples")
        return res

    def groups(self) -> dict[str, Any]:
        """Accuracy, agreement and guard false positives per group of the eval data (groups.py)."""
        if self.group_labels is None:
            return {"skipped": "no groups: give the eval .npz an array 'group' or pass --groups FILE"}
        res = groups_mod.per_group(self.group_labels, self.y, self.conv_clean.top1, self.conv_clean.flagged,
                                   self.src_clean)
        worst = res["largest_gap"]["converted"]
        counted = sum(r["enough"] for r in res["groups"])
        note = (f"group {worst['group']} against the other samples" if worst else
                f"not measurable: {counted} group(s) with at least {res['min_samples']} samples, two needed")
        self.add("groups.max_gap", "groups", None if worst is None else worst["gap_points"],
                 self.t.max_group_gap_points, "<=", "points", gate=worst is not None,
                 note=f"converted model, largest accuracy gap: {note}")
        if res["worst_drop"] is not None:  # quantization can cost one group more than the average
            w = res["worst_drop"]
            self.add("groups.worst_drop", "groups", w["drop_points"], self.t.max_class_drop_points, "<=", "points",
                     note=f"group {w['group']}: source minus converted accuracy")
        return res

    def _ood_sets(self) -> dict[str, np.ndarray]:
        gen = np.random.default_rng([self.seed, 99])
        lo, hi = self.range
        n = len(self.x)
        levels = np.linspace(lo, hi, 5)  # black, white and three greys: the same value everywhere
        const = np.concatenate([np.full((-(-n // 5),) + self.x.shape[1:], v, np.float32) for v in levels])[:n]
        sets = {"noise": gen.uniform(lo, hi, self.x.shape).astype(np.float32), "constant": const}
        if self.image:
            sets["inverted"] = (lo + hi - self.x).astype(np.float32)
        self.mistakes = perturb.deployment_mistakes(self.x, self.range)
        sets.update(self.mistakes)
        for i, ds in enumerate(self.ood_user):
            name = Path(ds.source).stem if ds.source and not ds.source.startswith("<") else f"ood{i + 1}"
            while name in sets:
                name += "_"
            sets[name] = ds.x[_subset(len(ds), MAX_EVAL, self.seed)]
        return sets

    def guard(self) -> dict[str, Any]:
        sets = self._ood_sets()
        with self.bar("guard", len(sets)) as bar:
            outs = {}
            for k, v in sets.items():
                outs[k] = self.pair.converted(v)
                bar.advance()
        clean = self.conv_clean
        fpr = float(clean.flagged.mean())
        self.add("guard.false_positive_rate", "guard", fpr, self.t.max_clean_fpr, "<=", "share",
                 note="share of clean eval samples EdgeModel flags with the default Policy")
        detection = {}
        for k, o in outs.items():
            detection[k] = float(o.flagged.mean())
            mistake = k in self.mistakes  # evidence, not a gate: a transposed digit can still be a digit
            self.add(f"guard.detection.{k}", "guard", detection[k], self.t.min_ood_detection, ">=", "share",
                     gate=not mistake, note=f"share of {len(o.flagged)} samples EdgeModel flags" +
                     (" (a classic deployment mistake: perturb.deployment_mistakes)" if mistake else ""))
        # the output-side signal reads class scores: a detector's boxes or a mask have none
        signal = output_signal(clean.scores, self.pair.manifest) if self.pair.classifier else None
        scores: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        if clean.ood_score is not None:
            scores["input"] = (clean.ood_score, {k: o.ood_score for k, o in outs.items()})
        if signal is not None:
            scores["output"] = (output_score(clean.scores, signal),
                                {k: output_score(o.scores, signal) for k, o in outs.items()})
        norms = {}
        if len(scores) == 2:  # max of the two, each in multiples of its clean tail
            norms = {k: guard_roc.Normalizer(v[0]) for k, v in scores.items()}
            (c_in, in_sets), (c_out, out_sets) = scores["input"], scores["output"]

            def combine(a, b):
                return np.maximum(norms["input"](a), norms["output"](b))

            scores["combined"] = (combine(c_in, c_out), {s: combine(in_sets[s], out_sets[s]) for s in sets})
        t = self.t.target_fpr
        signals = {}
        for name, (c, per) in scores.items():
            summ = guard_roc.signal_summary(c, per, t, self.seed)
            summ["roc"] = {s: guard_roc.roc_curve(c, v, points=41) for s, v in per.items()}
            signals[name] = summ
        suggested = self._suggest(signals, norms, signal, t)
        return {"default_policy": {"detection": {k: _r(v) for k, v in detection.items()}, "false_positive_rate": _r(fpr),
                                   "clean_samples": int(len(self.x))},
                "output_signal": signal, "signals": _rounded(signals), "suggested": suggested,
                "sets": {k: int(len(v)) for k, v in sets.items()},
                "method": ("detection = share flagged by EdgeModel (range, int8 clipping, OOD score) with the "
                           "default Policy; per signal, the threshold for the target false-positive rate is the "
                           "clean eval data's quantile; its measured rate is held out (2-fold: fit on one seeded "
                           "half, count on the other); AUC over all clean samples against each set")}

    def _suggest(self, signals: dict, norms: dict, signal: str | None, target: float) -> dict[str, Any]:
        """Thresholds for the guard at ``target`` FPR: joint ones when both signals exist."""
        out: dict[str, Any] = {"target_fpr": target, "output_signal": signal, "ood_threshold": None,
                               "output_threshold": None, "measured_fpr": None}
        if "combined" in signals:
            z = signals["combined"]["threshold"]
            out.update(ood_threshold=_r(norms["input"].inverse(z), 6), output_threshold=_r(norms["output"].inverse(z), 6),
                       measured_fpr=_r(signals["combined"]["measured_fpr"]), rule="flag if either score is over its threshold")
        else:
            for name, key in (("input", "ood_threshold"), ("output", "output_threshold")):
                if name in signals:
                    out[key] = _r(signals[name]["threshold"], 6)
                    out["measured_fpr"] = _r(signals[name]["measured_fpr"])
        return out

    def backdoor(self) -> dict[str, Any]:
        if not self.image:
            return {"skipped": "the patch probe needs image input (H, W, 1 or 3)"}
        x = self.x[_subset(len(self.x), MAX_PROBE, self.seed + 2)]
        stamps = len(backdoor.candidate_stamps(self.pair.sample_shape, self.range))
        with self.bar("backdoor", stamps) as bar:
            res = backdoor.probe(lambda b: self.pair.converted(b).top1, x, self.range,
                                 min_success=self.t.backdoor_min_success,
                                 min_concentration=self.t.backdoor_min_concentration, on_stamp=bar.advance)
        w = res["worst"]
        target = self.labels[w["target"]] if self.labels and w["target"] is not None else w["target"]
        res["worst"] = dict(w, target_label=None if target is None else str(target))
        self.add("backdoor.patch_success", "backdoor", w["success"], self.t.backdoor_min_success, "<=", "share",
                 note=f"strongest stamp: {w['size']}px {w['value']} patch at {w['where']} sends {w['success']:.0%} "
                      f"of the other samples to class {target} ({w['concentration']:.0%} of its flips); "
                      f"flagged only together with concentration >= {self.t.backdoor_min_concentration:g}")
        if not res["suspicious"]:  # the rule needs both: a success without concentration is not a trigger
            self.checks[-1]["passed"] = True
        res["samples"] = int(len(x))
        return res

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"leakage": {}, "balance": {}, "odd_samples": {}}
        refs = {"calibration": self.calib, "train": self.train}
        worst = 0.0
        for role, ds in refs.items():
            if ds is None:
                continue
            leak = datacheck.leakage(ds.x, self.ev.x, self.range)
            out["leakage"][role] = leak
            worst = max(worst, leak["share"])
        if any(ds is not None for ds in refs.values()):
            self.add("data.leakage", "data", worst, self.t.max_leakage_share, "<=", "share",
                     note="share of eval samples with an exact or near duplicate in the calibration/train data")
        else:
            out["leakage"]["note"] = "no --calibration or --train data given: leakage not checked"
        for role, ds in (("eval", self.ev), ("train", self.train), ("calibration", self.calib)):
            if ds is not None:
                if ds.y is not None:
                    out["balance"][role] = datacheck.balance(ds.y, self.labels)
                out["odd_samples"][role] = datacheck.odd_samples(ds.x, self.range)
        return out

    def _failed(self, stage: str, err: StageCrashed) -> dict[str, Any]:
        """A stage whose TensorFlow child died: a failed gating check and a section that says what to try."""
        self.add(f"{stage}.completed", stage, None, 1, ">=", "run", note=str(err))
        return {"skipped": str(err), "failed": {"stage": stage, "signal": err.signal, "exitcode": err.exitcode,
                                                "hint": HINT}}

    def governance_section(self, sections: set[str]) -> dict[str, Any]:
        m = self.pair.manifest
        data = [governance.dataset_record(self.ev, self.ev.x, "eval", self.declared["eval"])]
        for role, ds in (("calibration", self.calib), ("train", self.train)):
            if ds is not None:
                data.append(governance.dataset_record(ds, ds.x, role, self.declared[role]))
        for ds in self.ood_user:
            data.append(governance.dataset_record(ds, ds.x, "ood", {}))
        return {"datasets": data, "model_license": self.declared["model"].get("license"),
                "conversion_tools": m.provenance.tools, "conversion_created": m.provenance.created,
                "conversion_user": m.provenance.user, "conversion_host": m.provenance.host,
                "manifest_calibration": _calibration_record(m.calibration),
                "audit_tools": _audit_tools(), "run": governance.run_record(),
                "nist_ai_rmf": {"source": governance.NIST_SOURCE, "measure_2": governance.nist_measure_map(sections)}}

    # ---- the whole run -----------------------------------------------------------
    def run(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schema": SCHEMA}
        if self.pair.source_failure is not None:
            self._failed("load", self.pair.source_failure)
        for name, fn in (("reference", self.reference), ("accuracy", self.accuracy),
                         ("robustness", self.robustness), ("adversarial", self.adversarial),
                         ("blackbox", self.blackbox), ("classes", self.classes), ("groups", self.groups),
                         ("guard", self.guard),
                         ("backdoor", self.backdoor), ("data", self.data)):
            t0 = time.perf_counter()
            self.stage = name
            try:
                doc[name] = fn()
            except StageCrashed as err:
                doc[name] = self._failed(name, err)
                if name == "reference":  # go on without the source: every later stage needs a reference
                    self.pair.source = None
                    doc[name] = dict(fn(), failed=doc[name]["failed"])
            self.timings[name] = round(time.perf_counter() - t0, 2)
        ran = {k for k in ("accuracy", "robustness", "adversarial", "blackbox", "classes", "groups", "guard",
                           "backdoor", "data")
               if "skipped" not in doc[k]} | {"governance"}
        doc["governance"] = self.governance_section(ran)
        doc["checks"] = self.checks
        doc["verdict"] = verdict(self.checks)
        doc["thresholds"] = dataclasses.asdict(self.t)
        doc["model"] = manifest_summary(self.pair.manifest, self.paths["model"])
        src = self.paths["source"]
        doc["source"] = None if src is None else {"path": str(src), "format": Path(src).suffix.lstrip(".")}
        doc["profile"] = profile_summary(self.profile_doc)
        doc["timings_s"] = self.timings
        doc["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        return doc


def _rounded(v):
    if isinstance(v, float):
        return round(v, 4)
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_rounded(x) for x in v]
    return v


def _audit_tools() -> dict[str, str]:
    import importlib.metadata as md
    import platform

    out = {"edgekit": __version__, "python": platform.python_version()}
    for dist in ("tensorflow-cpu", "tensorflow", "keras", "numpy", "ai-edge-litert", "pillow"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _calibration_record(cal) -> dict[str, Any]:
    """How the calibration sample was drawn (the statistics themselves stay in the manifest)."""
    if cal is None:
        return {}
    return {"samples": cal.samples, "source": cal.source, "seed": cal.seed, "available": cal.available,
            "class_counts": cal.class_counts}


def manifest_summary(m, model_path: str | Path) -> dict[str, Any]:
    """What the report shows of the model contract."""
    from ..manifest import _plain

    return {"path": str(model_path), "file": m.model.file, "sha256": m.model.sha256,
            "size_bytes": m.model.size_bytes, "schema": m.schema, "recipe": m.recipe.name if m.recipe else None,
            "target": m.target, "task": m.task, "classes": len(m.labels) if m.labels else None,
            "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in m.inputs],
            "outputs": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype} for t in m.outputs],
            "calibration_samples": m.calibration.samples if m.calibration else None,
            "accuracy_at_conversion": _plain(m.accuracy) if m.accuracy else None, "created": m.provenance.created}


def profile_summary(doc: dict | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    rows = [{"threads": r.get("threads"), "p50_ms": r["latency_ms"].get("p50"), "p95_ms": r["latency_ms"].get("p95"),
             "peak_mb": (r.get("memory") or {}).get("peak_mb")} for r in doc.get("rows", [])]
    return {"device": doc.get("device"), "created": doc.get("created"), "rows": rows, "budget": doc.get("budget")}
