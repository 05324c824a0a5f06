"""What ``EdgeModel.predict`` returns: the outputs as floats, every check's verdict, and where they came from.

Example:
    >>> pred = model.predict(image)                 # doctest: +SKIP
    >>> pred.top_k(3)                               # doctest: +SKIP
    [('7', 0.97), ('1', 0.02), ('9', 0.004)]
    >>> pred.ok, pred.flagged, pred.sources         # doctest: +SKIP
    (True, array([False]), ['model'])
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Prediction:
    """Outputs (dequantized float32, batch axis first), verdicts and provenance of one predict call."""

    __slots__ = ("outputs", "batched", "latency_ms", "incidents", "_in", "_out", "_model", "_sources")

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

    # ---- values ------------------------------------------------------------
    @property
    def output(self) -> np.ndarray:
        """The first output; without the batch axis when one sample was passed."""
        out = self.outputs[0]
        return out if self.batched else out[0]

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
        return None if self._in is None else self._in.ood

    @property
    def checks(self) -> list:
        """Every check's verdict (list of Check), computed on demand so predict stays cheap."""
        out = [] if self._in is None else self._in.checks(self.n)
        if self._out is not None:
            out += self._model.output_guard.checks(self._out, self.n)
        budget = self._model.policy.latency_budget_ms
        if budget is not None:
            from .checks import Check

            out.append(Check("latency", "latency", self.latency_ms <= budget, f"{self.latency_ms:.2f} ms",
                             f"{budget:g} ms"))
        return out

    # ---- classifiers -------------------------------------------------------
    def top_k(self, k: int = 3) -> list:
        """(label, probability) pairs, best first; a list of those per sample for a batch."""
        labels = self._model.labels
        scores = self.outputs[0].reshape(self.n, -1)
        k = max(1, min(k, scores.shape[1]))
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        rows = [[(labels[j] if labels and j < len(labels) else str(j), float(scores[i, j])) for j in order[i]]
                for i in range(self.n)]
        return rows if self.batched else rows[0]

    @property
    def label(self):
        """The top-1 label (a list of them for a batch)."""
        top = self.top_k(1)
        return [r[0][0] for r in top] if self.batched else top[0][0]

    def to_dict(self, k: int = 3) -> dict[str, Any]:
        """JSON-ready summary: outputs (top-k for classifiers), checks, sources and incidents."""
        d: dict[str, Any] = {"latency_ms": round(self.latency_ms, 3), "sources": self.sources,
                             "flagged": self.flagged.tolist()}
        if self._model.classifier:
            d["top_k"] = self.top_k(k) if self.batched else [self.top_k(k)]
        else:
            d["outputs"] = [o.tolist() for o in self.outputs]
        if self.ood_score is not None:
            d["ood_score"] = [round(float(s), 4) for s in self.ood_score]
        d["checks"] = [{"name": c.name, "kind": c.kind, "ok": c.ok, "value": c.value, "limit": c.limit,
                        "failed_samples": list(c.failed)} for c in self.checks]
        d["incidents"] = self.incidents
        return d

    def __repr__(self) -> str:
        what = self.label if self._model.classifier else f"output shape {self.output.shape}"
        return f"Prediction({what!r}, n={self.n}, ok={self.ok}, {self.latency_ms:.2f} ms)"
