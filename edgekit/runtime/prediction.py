"""What ``EdgeModel.predict`` returns: the outputs as floats, every check's verdict, and where they came from.

Outputs are in the model's output order (``pred.outputs``, ``pred.output_names``) and by name
(``pred["scores"]``); ``pred.output`` is the first. ``top_k`` and ``label`` read the first
classifier output, or the one named with ``output=``.

Example:
    >>> pred = model.predict(image)                 # doctest: +SKIP
    >>> pred.top_k(3)                               # doctest: +SKIP
    [('7', 0.97), ('1', 0.02), ('9', 0.004)]
    >>> two = model.predict({"image": image, "features": f})    # doctest: +SKIP
    >>> two["value"].shape, two.output_names                      # doctest: +SKIP
    ((1,), ['scores', 'value'])
    >>> pred.ok, pred.flagged, pred.sources         # doctest: +SKIP
    (True, array([False]), ['model'])
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Prediction:
    """Outputs (dequantized float32, batch axis first), verdicts and provenance of one predict call.

    ``outputs`` are batch-first, as the guard saw them; ``pred[name]`` and ``pred.output`` give a
    batch back in the model's own layout (a recurrent state to pass in again)."""

    __slots__ = ("outputs", "batched", "latency_ms", "incidents", "_in", "_out", "_model", "_sources", "_owned")

    def __init__(self, model, outputs: list[np.ndarray], batched: bool, in_verdict, out_verdict,
                 latency_ms: float):
        self.outputs = outputs  # one float32 array per model output, each (N, ...)
        self.batched = batched
        self.latency_ms = latency_ms
        self.incidents: list[dict[str, Any]] = []
        self._in = in_verdict
        self._out = out_verdict
        self._model = model
        self._sources: list[str] | None = None  # None: every sample came from the model
        self._owned = False  # True once outputs were copied for replacement (the model's own stay intact)

    # ---- values ------------------------------------------------------------
    @property
    def output(self) -> np.ndarray:
        """The first output; without the batch axis when one sample was passed."""
        if self._model._out_layouts[0].plain:  # the usual case, without a call
            out = self.outputs[0]
            return out if self.batched else out[0]
        return self._form(0)

    def _form(self, pos: int) -> np.ndarray:
        """Output ``pos`` as the caller gets it: one sample without its batch axis; a batch in the model's
        own layout (a state [2, N, 128] goes back in as it came out)."""
        out, lay = self.outputs[pos], self._model._out_layouts[pos]
        if lay.plain:
            return out if self.batched else out[0]
        return lay.caller_form(out, not self.batched)

    @property
    def output_names(self) -> list[str]:
        return list(self._model.output_names)

    def __getitem__(self, key: str | int) -> np.ndarray:
        """One output by name or position; without the batch axis when one sample was passed."""
        if isinstance(key, str):
            names = self._model.output_names
            if key not in names:
                raise KeyError(f"no output named {key!r}; the model's outputs are {', '.join(names)}")
            key = names.index(key)
        return self._form(key)

    def __len__(self) -> int:
        return len(self.outputs)

    def replace_rows(self, rows: np.ndarray, values: list, *, per_sample: bool = False) -> None:
        """Put ``values`` (one array of the rows' answers per output, or with ``per_sample`` one value
        every row gets) into ``rows``, on copies of the outputs: the arrays the model produced stay as
        they were (the shadow compares those)."""
        if not per_sample and rows.all() and all(v.shape[:1] == (self.n,) for v in values):
            self.outputs = [np.array(v, np.float32) for v in values]
            self._owned = True
            return
        if not self._owned:
            self.outputs = [o.copy() for o in self.outputs]
            self._owned = True
        for out, v in zip(self.outputs, values):
            out[rows] = v

    @property
    def n(self) -> int:
        return int(self.outputs[0].shape[0])

    @property
    def sources(self) -> list[str]:
        """Per sample: "model", "fallback" or "default"."""
        return list(self._sources) if self._sources is not None else ["model"] * self.n

    def set_source(self, rows: np.ndarray, source: str) -> None:
        if self._sources is None:
            self._sources = ["model"] * self.n
        for i in np.flatnonzero(rows):
            self._sources[int(i)] = source

    # ---- verdicts ----------------------------------------------------------
    @property
    def flagged(self) -> np.ndarray:
        """Per sample: did any input or output check flag it (whatever the policy then did)?"""
        flags = np.zeros(self.n, bool)
        for v in (self._in.flagged if self._in is not None else None,
                  self._out.flagged if self._out is not None else None):
            if v is not None:
                flags |= v
        return flags

    @property
    def ok(self) -> bool:
        """True when every check passed for every sample and the model answered all of them."""
        return not self.flagged.any() and self._sources is None and not self.incidents

    @property
    def ood_score(self) -> np.ndarray | None:
        """Per sample, the input-side OOD score (the worst input's, for several inputs)."""
        return None if self._in is None else self._in.ood

    @property
    def ood_scores(self) -> dict[str, np.ndarray | None]:
        """Per input name, that input's OOD scores (None without calibration statistics)."""
        if self._in is None:
            return {}
        parts = self._in.parts if self._in.parts is not None else [self._in]
        return dict(zip(self._model.input_names, [p.ood for p in parts]))

    @property
    def checks(self) -> list:
        """Every check's verdict (list of Check), computed on demand so predict stays cheap."""
        out = [] if self._in is None else self._in.checks(self.n)
        if self._out is not None:
            out += self._model.output_checks.checks(self._out, self.n)
        budget = self._model.policy.latency_budget_ms
        if budget is not None:
            from .checks import Check

            out.append(Check("latency", "latency", self.latency_ms <= budget, f"{self.latency_ms:.2f} ms",
                             f"{budget:g} ms"))
        return out

    # ---- classifiers -------------------------------------------------------
    def top_k(self, k: int = 3, output: str | None = None) -> list:
        """(label, probability) pairs, best first; a list of those per sample for a batch.

        ``output``: the output to read (default: the first classifier output). The manifest's
        labels name the classes of the first output; others get class numbers."""
        model = self._model
        pos = model.classifier_output if output is None else model.output_names.index(output)
        labels = model.labels if pos == 0 else None
        scores = self.outputs[pos].reshape(self.n, -1)
        k = max(1, min(k, scores.shape[1]))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        rows = [[(labels[j] if labels and j < len(labels) else str(j), float(scores[i, j])) for j in order[i]]
                for i in range(self.n)]
        return rows if self.batched else rows[0]

    @property
    def label(self):
        """The top-1 label of the first classifier output (a list of them for a batch)."""
        top = self.top_k(1)
        return [r[0][0] for r in top] if self.batched else top[0][0]

    def to_dict(self, k: int = 3) -> dict[str, Any]:
        """JSON-ready summary: outputs (top-k for classifiers), checks, sources and incidents."""
        d: dict[str, Any] = {"latency_ms": round(self.latency_ms, 3), "sources": self.sources,
                             "flagged": self.flagged.tolist()}
        if self._model.classifier:
            d["top_k"] = self.top_k(k) if self.batched else [self.top_k(k)]
        if len(self.outputs) > 1:  # each with its batch axis, where the model has it (a state: [2, N, 128])
            lays = self._model._out_layouts
            d["outputs"] = {name: (o if lay.plain else lay.caller_form(o, False)).tolist()
                            for name, o, lay in zip(self.output_names, self.outputs, lays)}
        elif not self._model.classifier:
            d["outputs"] = [o.tolist() for o in self.outputs]
        if self.ood_score is not None:
            d["ood_score"] = [round(float(s), 4) for s in self.ood_score]
        if self._in is not None and self._in.parts is not None:
            d["ood_scores"] = {name: None if s is None else [round(float(v), 4) for v in s]
                               for name, s in self.ood_scores.items()}
        d["checks"] = [{"name": c.name, "kind": c.kind, "ok": c.ok, "value": c.value, "limit": c.limit,
                        "failed_samples": list(c.failed)} for c in self.checks]
        d["incidents"] = self.incidents
        return d

    def __repr__(self) -> str:
        what = self.label if self._model.classifier else f"output shape {self.output.shape}"
        return f"Prediction({what!r}, n={self.n}, ok={self.ok}, {self.latency_ms:.2f} ms)"
