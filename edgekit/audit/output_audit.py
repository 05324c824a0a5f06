"""The audit of any other model: several inputs, or outputs that are not one input's class scores.

Detection boxes and scores, segmentation masks, regressed values: robustness is each output's
deviation from its clean output (deviation.py: relative error, SQNR in dB) under every
perturbation of every input, perturbed by name (image corruptions for image inputs, noise and
scaling for the others), and under the black-box Square Attack driving the outputs away from
their clean values within its query budget. Class-score outputs also report top-1 agreement.
The guard and data stages run as for a classifier when there is one input; the stages that need
a class answer (gradient transfer, per class, backdoor probe) say ``skipped`` and why.

Example:
    >>> doc = run_audit("face.tflite", None, "crops.npz")                            # doctest: +SKIP
    >>> blur = doc["robustness"]["inputs"]["input"]["perturbations"]["blur"]         # doctest: +SKIP
    >>> blur["points"][0]["outputs"]["regressors"]                                   # doctest: +SKIP
    {'relative_error': 0.0714, 'sqnr_db': 22.92}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import deviation, perturb
from .blackbox import square_attack
from .models import Outcome
from .pipeline import EPSILONS, Audit, _r, _subset, value_range

DEVIATION_VALUES = 100_000  # input values per sample and attack: 50 8x8 digits; images over 5,000 values get 20
MIN_DEVIATION, MAX_DEVIATION = 20, 50
DEVIATION_QUERIES = 100  # per sample, epsilon and input: the attack reports how far it got within them


class OutputAudit(Audit):
    """Audit by output deviation; the stages a classifier audit has, over inputs by name."""

    def take_inputs(self, keep: np.ndarray) -> None:
        pair = self.pair
        self.names = list(pair.input_shapes)
        self.x = self.ev.take(keep).arrays(self.names)
        self.ranges = {n: value_range(pair.manifest, n, self.x[n]) for n in self.names}
        self.images = {n: perturb.is_image(s) for n, s in pair.input_shapes.items()}
        self.single = len(self.names) == 1
        if self.single:  # the guard and data stages read one array, as for a classifier
            self.x = self.x[self.names[0]]
        self.range, self.range_from = self.ranges[self.names[0]]
        self.image = self.images[self.names[0]]
        # EdgeModel's own per-output classifier verdict (probability outputs, the classification task's first)
        self.kinds = deviation.output_kinds(pair.output_names, pair.edge._classifiers)

    def inputs(self) -> dict[str, np.ndarray]:
        return {self.names[0]: self.x} if self.single else self.x

    def outputs_section(self) -> dict[str, Any]:
        return {n: {"kind": k, "measured": deviation.MEASURED[k]} for n, k in self.kinds.items()}

    # ---- stages ------------------------------------------------------------------
    def reference(self) -> dict[str, Any]:
        self.conv_clean = self.pair.converted(self.x)
        self.src_clean = None
        self.y = None
        note = ("not a single-input classifier: every figure is the deviation of each output from the converted "
                "model's own clean output on the same samples")
        return {"kind": "clean_outputs", "note": note, "samples": int(len(self.conv_clean.flagged)),
                "subset_note": self.eval_note, "value_range": list(self.range), "value_range_from": self.range_from,
                "inputs": {n: {"shape": list(self.pair.input_shapes[n]), "value_range": list(r),
                               "value_range_from": f} for n, (r, f) in self.ranges.items()},
                "outputs": self.outputs_section()}

    def accuracy(self) -> dict[str, Any]:
        first = self.pair.output_names[0]
        if self.ev.y is None or self.kinds[first] != "class_scores":
            return {"skipped": "no class labels for a class-score output: deviation figures only"}
        y = np.asarray(self.ev.y)[_subset(len(self.ev), len(self.conv_clean.flagged), self.seed)]
        conv = float(np.mean(self.conv_clean.scores.argmax(axis=1) == y))
        return {"source": None, "converted": _r(conv), "drop_points": None, "agreement": None, "output": first}

    def robustness(self) -> dict[str, Any]:
        plan = [(n, p) for n in self.names for p in perturb.applicable(self.pair.input_shapes[n])]
        clean = self.conv_clean.outputs
        rows: dict[str, Any] = {n: {"perturbations": {}} for n in self.names}
        with self.bar("robustness", sum(len(p.strengths) for _, p in plan)) as bar:
            for i, (name, p) in enumerate(plan):
                gen = np.random.default_rng([self.seed, i])
                pts = []
                for s in p.strengths:
                    out = self.run_on(name, p.apply(self.inputs()[name], s, self.ranges[name][0], gen), self.inputs())
                    pts.append({"strength": s, "flagged": _r(out.flagged.mean()),
                                "outputs": deviation.measure(clean, out.outputs, self.pair.output_names, self.kinds)})
                    bar.advance()
                rows[name]["perturbations"][p.name] = {"unit": p.unit, "points": pts}
        for name in self.names:
            rows[name]["image"] = self.images[name]
        return {"mode": "output_deviation", "inputs": rows, "outputs": self.outputs_section(),
                "method": "each corruption on one input at a time (the others clean), every eval sample, seeded; "
                          "per output: deviation from the clean output"}

    def adversarial(self) -> dict[str, Any]:
        return {"skipped": "the gradient transfer attacks cover single-input classifiers (the blackbox section "
                           "attacks the converted file's outputs themselves)"}

    def blackbox(self) -> dict[str, Any]:
        """Square Attack per input, each output driven away from its clean value within the query budget."""
        res: dict[str, Any] = {}
        counts = {}
        with self.bar("blackbox", len(self.names) * len(EPSILONS) * DEVIATION_QUERIES) as bar:
            for name in self.names:
                values = max(1, int(np.prod(self.pair.input_shapes[name])))
                idx = _subset(len(self.conv_clean.flagged),
                              int(np.clip(DEVIATION_VALUES // values, MIN_DEVIATION, MAX_DEVIATION)), self.seed + 3)
                counts[name] = len(idx)
                res[name] = self._attack_input(name, idx, bar)
        names = self.pair.output_names
        strongest = max(r["outputs"][n]["relative_error"] for rs in res.values() for r in rs for n in names)
        sampled = ", ".join(f"{counts[n]} of {len(self.conv_clean.flagged)} eval samples for input {n}"
                            for n in self.names)
        return {"mode": "output_deviation", "attacks": {"square": res}, "queries": DEVIATION_QUERIES,
                "samples": counts, "strongest_relative_error": _r(strongest), "outputs": self.outputs_section(),
                "sampled": f"{sampled} (seeded subsets), {DEVIATION_QUERIES} queries each per epsilon",
                "epsilon_unit": "input units (L-infinity), listed with their share of the input's value range",
                "method": "Square Attack (Andriushchenko et al. 2020, L-infinity) on one input at a time through "
                          "EdgeModel, keeping a change when it moves the outputs further from their clean values "
                          "(loss: 1 - mean relative error); per output: deviation from the clean output"}

    def _attack_input(self, name: str, idx: np.ndarray, bar) -> list[dict[str, Any]]:
        """One row per epsilon: the Square Attack on input ``name`` of samples ``idx``, the others held clean."""
        others = {k: v[idx] for k, v in self.inputs().items()}
        clean = [o[idx] for o in self.conv_clean.outputs]
        (lo, hi) = rng = self.ranges[name][0]
        away = deviation.deviation_loss(clean)

        def loss(b, live):  # the attack queries live samples only: run them with their own other inputs
            return away(self.run_on(name, b, {k: v[live] for k, v in others.items()}).outputs, live)

        rows = []
        for i, share in enumerate(EPSILONS):
            done0 = bar.done
            # predict is the identity: the loss runs the model, since it alone knows which rows are live
            xa = square_attack(lambda b: b, others[name], None, share * (hi - lo), rng, queries=DEVIATION_QUERIES,
                               seed=self.seed + i, on_query=bar.advance, loss=loss)
            bar.advance(done0 + DEVIATION_QUERIES - bar.done)  # it stops early once every sample is done
            out = self.run_on(name, xa, others)
            rows.append({"epsilon": _r(share * (hi - lo), 6), "epsilon_share": share, "flagged": _r(out.flagged.mean()),
                         "outputs": deviation.measure(clean, out.outputs, self.pair.output_names, self.kinds)})
        return rows

    def run_on(self, name: str, xi: np.ndarray, others: dict[str, np.ndarray]) -> Outcome:
        """The converted model on input ``name`` = xi and the other inputs from ``others`` (same rows)."""
        return self.pair.converted(xi if self.single else dict(others, **{name: xi}))

    def classes(self) -> dict[str, Any]:
        return {"skipped": "per-class figures need a single-input classifier"}

    def guard(self) -> dict[str, Any]:
        if not self.single:
            return {"skipped": "the out-of-distribution sets are built for one input"}
        return super().guard()

    def backdoor(self) -> dict[str, Any]:
        return {"skipped": "the patch probe looks for one class a stamp sends inputs to: classifiers only"}

    def data(self) -> dict[str, Any]:
        if not self.single:
            return {"skipped": "the leakage and odd-sample checks read one input"}
        return super().data()
