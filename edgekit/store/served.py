"""``serve(STORE)``: serves the store's active version through EdgeModel and follows the store.

The store serves the runtime, never the other way round: edgekit.runtime knows nothing of stores.

Between calls (never in the middle of one) it checks the index with one ``stat``; when the active
version or the candidate changed, it loads the new models first and swaps them in under a lock, so
a call already running finishes on the model it started with. On live calls it also:

- runs the staged candidate in shadow (``Shadow``, a background thread; ``canary_wait=True`` makes
  the caller wait for it, so every call is compared) and, when the canary ends or cannot pass any
  more, promotes or rejects it through the store (edgekit.store.canary.decide);
- runs a share of calls (``reference_rate``) through the previous good version, and every
  ``RollbackRules.check_every`` calls reads the active model's ``health()``: when disagreement with
  that reference, the error rate, the OOD share or the p95 latency crosses a rule, the store rolls
  back to the previous good version by itself and records why (only for a version reached by
  deploy or promotion: a version restored by a rollback is not rolled back further by itself).

Example:
    >>> from edgekit.store import serve
    >>> model = serve("/var/lib/app/models")                       # doctest: +SKIP
    >>> model.predict(x).label, model.sha256[:12]                  # doctest: +SKIP
    ('7', '3f0c9a1b2d4e')
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EdgekitError, InputValidationError, UsageError
from ..runtime.incidents import IncidentLog
from ..runtime.monitor import Shadow
from ..runtime.policy import Policy
from .canary import Budgets, decide
from .health import HealthWriter, compact
from .store import ModelStore, Version

_perf = time.perf_counter
MAX_LATENCIES = 10_000  # candidate call latencies kept for the p95 (a long time-limited canary stops adding)


@dataclass(frozen=True)
class RollbackRules:
    """When the active version's health says "go back" (None: rule off)."""

    max_disagreement: float | None = 0.2  # with the previous good version, on the shadowed calls
    max_error_rate: float | None = 0.05  # invoke and output incidents per call
    max_ood_share: float | None = 0.5  # share of recent samples flagged (an OOD storm)
    max_latency_ms: float | None = None  # p95 over the recent calls
    min_calls: int = 100  # calls on a version before it is judged
    min_compared: int = 30  # shadowed calls before disagreement counts
    check_every: int = 50  # calls between two health() reads


class _Canary:
    """A candidate in shadow: its model, the comparison, and its own figures."""

    def __init__(self, sha: str, model, plan: dict[str, Any], classifier: bool):
        self.sha, self.model, self.plan = sha, model, plan
        self.budgets = Budgets.from_dict(plan.get("budgets"))
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.ood = 0
        self.latencies: list[float] = []
        self.shadow = Shadow(self._run, 1.0, classifier=classifier, max_queue=256)
        self.decided = False

    def _run(self, batch):
        t0 = _perf()
        pred = self.model.predict(batch)
        ms = (_perf() - t0) * 1000.0
        ood = sum(len(r.get("samples") or []) for r in pred.incidents if r["kind"] == "ood")
        with self._lock:
            if len(self.latencies) < MAX_LATENCIES:
                self.latencies.append(ms)
            self.ood += ood
        return pred.outputs[0]

    def figures(self, wait: bool = False, latency: bool = True) -> dict[str, Any]:
        """The canary's counts; ``latency=False`` skips the p95 (a sort: not on every call)."""
        snap = self.shadow.snapshot(wait=wait)
        with self._lock:
            lat = sorted(self.latencies) if latency else []
            ood = self.ood
        return {"sha256": self.sha, "compared": snap["compared"], "disagreed": snap["disagreed"],
                "errors": snap["errors"], "skipped": snap["skipped"], "ood": ood,
                "latency_p95_ms": lat[min(len(lat) - 1, int(0.95 * len(lat)))] if lat else None,
                "elapsed_s": round(time.monotonic() - self.started, 3), "planned_calls": self.plan.get("calls"),
                "planned_minutes": self.plan.get("minutes")}

    def close(self) -> None:
        self.shadow.close()
        self.model.close()


class _Slot:
    """What one index generation serves: the active model, its reference, the canary."""

    def __init__(self, version: Version, via: str, model, canary: _Canary | None, has_good: bool, reference=None):
        self.version, self.via, self.model, self.canary = version, via, model, canary
        self.reference = reference  # the previous good version, shadowing the active one
        self.has_good = has_good
        self.calls = 0
        self.inflight = 0
        self.retired = False
        self.judged = False

    def close(self) -> None:
        if self.canary is not None:
            self.canary.close()
        self.model.close()
        if self.reference is not None:
            self.reference.close()


class ServedModel:
    """Serve ``root``'s active version; see the module docstring. Extra keywords go to EdgeModel.load.

    trusted_keys: require signatures by these public keys (on top of the store's ``trust/``).
    poll_s: seconds between two index checks (0: before every call; a stat costs about a microsecond).
    health_every_s: write the health snapshot into the store (STORE/health/, edgekit.store.health) at most this
    often, and on close; None: never. The call path only reads the clock; the write runs in a thread.
    """

    def __init__(self, root: str | Path, *, trusted_keys: list[str | Path] | None = None, poll_s: float = 0.0,
                 canary_wait: bool = False, reference_rate: float = 0.1,
                 rollback: RollbackRules | None = None, health_every_s: float | None = 10.0, **load_kwargs: Any):
        self.store = ModelStore(root, trusted_keys=trusted_keys)
        self.poll_s = poll_s
        self.canary_wait = canary_wait
        self.reference_rate = reference_rate
        self.rules = rollback or RollbackRules()
        if "shadow" in load_kwargs or "reference" in load_kwargs:
            raise UsageError("serve() picks the shadow reference itself (the previous good version); "
                             "set reference_rate= instead of shadow=/reference=")
        self.load_kwargs = load_kwargs
        self.policy: Policy = load_kwargs.pop("policy", None) or Policy()
        self._incident_log = self._writable_log()
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._stamp: Any = None
        self._checked = 0.0
        self._slot: _Slot | None = None
        if health_every_s is not None and not health_every_s > 0:
            raise UsageError(f"health_every_s must be positive (or None: no snapshots), got {health_every_s!r}")
        self.refresh(force=True)
        self._health = None if health_every_s is None or self._incident_log is None else \
            HealthWriter(self.store.root, health_every_s)

    def _writable_log(self) -> Path | None:
        """The store's incidents.jsonl, unless the store is read-only (then incidents stay in memory)."""
        try:
            IncidentLog(self.store.layout.incidents).close()
            return self.store.layout.incidents
        except UsageError:
            return None

    # ---- following the store -------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Pick up a changed index now (predict does this by itself). True when the served models changed."""
        stamp = self.store.index_stamp()
        if not force and stamp == self._stamp:
            return False
        if not self._refreshing.acquire(blocking=self._slot is None):
            return False  # another thread is swapping: this call keeps the current models
        try:
            try:
                idx = self.store.index()
                version, problems = self.store.resolve(idx)
            except EdgekitError as err:
                if self._slot is None:
                    raise
                self._keep_serving(stamp, err)
                return False
            if problems:
                self._on_unverified(idx, version, problems)
            cand = idx.get("candidate")
            old = self._slot
            same_active = old is not None and old.version.sha256 == version.sha256
            same_cand = (old is not None and (old.canary.sha if old.canary else None)
                         == (cand["sha256"] if cand else None))
            self._stamp = stamp
            if same_active and same_cand:
                return False
            try:
                slot = self._build(idx, version, cand)
            except EdgekitError as err:
                if old is None:
                    raise
                # keep serving what works; the store says what could not be loaded
                self.store.incident("store", f"cannot load version {version.sha256[:12]}: {err}", "kept-serving",
                                    old.version.sha256)
                return False
            with self._lock:
                self._slot = slot
                if old is not None:
                    old.retired = True
                    done = old.inflight == 0
            if old is not None and done:
                old.close()
            return True
        finally:
            self._refreshing.release()

    def _keep_serving(self, stamp: Any, err: EdgekitError) -> None:
        """A damaged or empty index: the loaded version is intact, so it goes on answering.

        Recorded once per state of the index file (the stamp): the next change (a repair, a deploy)
        is read again; until then calls cost no more than before.
        """
        self._stamp = stamp
        self.store.incident("store", f"cannot read the store: {err}", "kept-serving", self._slot.version.sha256)

    def _on_unverified(self, idx: dict[str, Any], version: Version, problems: list[str]) -> None:
        active = idx["active"]["sha256"]
        reason = "active version does not verify: " + "; ".join(problems)
        try:  # make it stick for every process and for status; a read-only store can only serve
            self.store.rollback(reason, expect=active, automatic=True)
        except EdgekitError:
            self.store.incident("store", reason, "serve-previous", version.sha256)

    def _load(self, version: Version, policy: Policy, **extra: Any):
        from ..runtime import EdgeModel

        # The store verified sha256 and signature (ModelStore.verify), but the load reads the files again:
        # with trusted keys it checks the signature over the very bytes it loads (a swap in between cannot run).
        # Every model writes the store's file with the policy's bounds (IncidentLog shares it safely).
        keys = self.store.trusted_keys() or None
        return EdgeModel.load(version.path, policy=policy, trusted_keys=keys,
                              **dict(self.load_kwargs, incident_log=self._incident_log, **extra))

    def _build(self, idx: dict[str, Any], version: Version, cand: dict[str, Any] | None) -> _Slot:
        via = (idx.get("active") or {}).get("via", "deploy") if idx["active"]["sha256"] == version.sha256 \
            else "rollback"
        good = [s for s in idx.get("good") or [] if s != version.sha256]
        reference = None
        if good and via != "rollback" and self.reference_rate > 0:
            try:
                reference = self._load(self.store.verify(good[0]), _strict(self.policy))
            except EdgekitError:
                reference = None  # no reference: the other rules still watch
        extra = {"shadow": self.reference_rate, "reference": reference} if reference is not None else {}
        model = self._load(version, self.policy, **extra)
        canary = None
        if cand is not None and cand["sha256"] != version.sha256:
            canary = self._start_canary(cand, model)
        return _Slot(version, via, model, canary, bool(good), reference)

    def _start_canary(self, cand: dict[str, Any], active) -> _Canary | None:
        sha = cand["sha256"]
        try:
            cmodel = self._load(self.store.verify(sha), _candidate_policy(self.policy))
        except EdgekitError as err:  # a candidate that does not verify or load is rejected on the spot
            self.store.reject(sha, None, f"candidate does not load: {err}")
            return None
        return _Canary(sha, cmodel, cand.get("canary") or {}, active.classifier)

    # ---- serving ---------------------------------------------------------------
    def predict(self, x: Any):
        """The active version's guarded prediction (an edgekit.runtime.Prediction)."""
        if self.poll_s <= 0 or time.monotonic() - self._checked >= self.poll_s:
            self._checked = time.monotonic()
            self.refresh()
        with self._lock:
            slot = self._slot
            slot.inflight += 1
        try:
            pred = slot.model.predict(x)
        finally:
            with self._lock:
                slot.inflight -= 1
                slot.calls += 1
                close = slot.retired and slot.inflight == 0
            if close:
                slot.close()
        if slot.canary is not None and not slot.canary.decided and not slot.retired:
            self._feed_canary(slot, x, pred)
        if not slot.retired and slot.calls % self.rules.check_every == 0:
            self._check_health(slot)
        if self._health is not None and self._health.due():
            self._health.write_soon(self.health_snapshot)
        return pred

    __call__ = predict

    def _feed_canary(self, slot: _Slot, x: Any, pred) -> None:
        canary = slot.canary
        if any(src != "model" for src in pred.sources):
            return  # the active model did not answer this call itself (default, fallback): nothing to compare
        try:
            batch = slot.model.coerce(x)[0]  # the candidate sees exactly the batch the active model saw
        except InputValidationError:
            return  # input the policy answered with its default: nothing to compare
        canary.shadow.offer(batch, pred.outputs[0])
        plan = canary.plan
        figures = canary.figures(wait=self.canary_wait, latency=False)
        verdict = decide(figures, canary.budgets, calls=plan.get("calls"), elapsed_s=figures["elapsed_s"],
                         minutes=plan.get("minutes"))
        if verdict.verdict == "continue":
            if figures["compared"] % 50 == 0:
                self.store.write_canary_figures(canary.sha, figures)
            return
        figures = canary.figures(latency=True)  # the end: now with the p95 latency
        verdict = decide(figures, canary.budgets, calls=plan.get("calls"), elapsed_s=figures["elapsed_s"],
                         minutes=plan.get("minutes"))
        with self._lock:
            if canary.decided:
                return
            canary.decided = True
        figures = dict(verdict.figures, budgets=canary.budgets.to_dict(), reasons=verdict.reasons)
        self.store.write_canary_figures(canary.sha, dict(figures, verdict=verdict.verdict))
        try:
            if verdict.verdict == "promote":
                self.store.promote(canary.sha, figures, reason="canary passed: " + "; ".join(verdict.reasons))
            else:
                self.store.reject(canary.sha, figures, reason="canary failed: " + "; ".join(verdict.reasons))
        except EdgekitError as err:  # a read-only store: keep serving the active version, say why
            self.store.incident("store", f"cannot record the canary decision: {err}", verdict.verdict, canary.sha)
        self.refresh()

    def _check_health(self, slot: _Slot) -> None:
        rules = self.rules
        if slot.judged or slot.via == "rollback" or not slot.has_good or slot.calls < rules.min_calls:
            return
        h = slot.model.health()
        reasons = []
        sh = h.get("shadow") or {}
        if (rules.max_disagreement is not None and (sh.get("compared") or 0) >= rules.min_compared
                and sh["disagreement_rate"] > rules.max_disagreement):
            reasons.append(f"disagreement with the previous version {sh['disagreement_rate']:.3f} "
                           f"over {rules.max_disagreement:g} ({sh['compared']} compared)")
        counts = h.get("incidents") or {}
        errors = counts.get("invoke", 0) + counts.get("output", 0)
        if rules.max_error_rate is not None and h.get("calls") and errors / h["calls"] > rules.max_error_rate:
            reasons.append(f"error rate {errors / h['calls']:.3f} over {rules.max_error_rate:g}")
        share = h.get("flagged_share")
        if rules.max_ood_share is not None and share is not None and share > rules.max_ood_share:
            reasons.append(f"OOD storm: {share:.0%} of the last {h.get('window')} samples flagged "
                           f"(over {rules.max_ood_share:.0%})")
        p95 = (h.get("latency_ms") or {}).get("p95")
        if rules.max_latency_ms is not None and p95 is not None and p95 > rules.max_latency_ms:
            reasons.append(f"p95 latency {p95:.2f} ms over {rules.max_latency_ms:g} ms")
        if not reasons:
            return
        slot.judged = True
        figures = {"calls": h.get("calls"), "shadow": sh or None, "incidents": counts, "flagged_share": share,
                   "latency_ms": h.get("latency_ms")}
        try:
            self.store.rollback("automatic: " + "; ".join(reasons), figures, expect=slot.version.sha256,
                                automatic=True)
        except EdgekitError as err:
            self.store.incident("store", f"automatic rollback failed: {err}", "none", slot.version.sha256)
        self.refresh()

    # ---- reporting -------------------------------------------------------------
    @property
    def sha256(self) -> str:
        return self._slot.version.sha256

    @property
    def model(self):
        """The EdgeModel serving right now."""
        return self._slot.model

    def canary_figures(self, wait: bool = False) -> dict[str, Any] | None:
        slot = self._slot
        return slot.canary.figures(wait=wait) if slot.canary is not None else None

    def health(self, **kw: Any) -> dict[str, Any]:
        h = self._slot.model.health(**kw)
        h["store"] = {"root": str(self.store.root), "sha256": self.sha256, "via": self._slot.via,
                      "canary": self.canary_figures()}
        return h

    def health_snapshot(self) -> dict[str, Any] | None:
        """The compact health document written into the store (edgekit.store.health.compact)."""
        slot = self._slot
        if slot is None:
            return None
        h = slot.model.health()
        canary = slot.canary.figures() if slot.canary is not None else None
        return compact(h, served={"via": slot.via, "canary": canary}, actions=slot.model.incident_log.actions())

    def incidents(self) -> list[dict[str, Any]]:
        return self._slot.model.incidents()

    def close(self) -> None:
        if self._health is not None:  # the last state, for whoever reads the store after this process
            self._health.write_now(self.health_snapshot)
            self._health.close()
            self._health = None
        with self._lock:
            slot, self._slot = self._slot, None
        if slot is not None:
            slot.close()

    def __enter__(self) -> "ServedModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ServedModel({str(self.store.root)!r}, active={self.sha256[:12]})"


def _strict(policy: Policy) -> Policy:
    """A reference answers or fails: no fallback, no silence (like EdgeModel's own fallback policy)."""
    return dataclasses.replace(policy, on_load="raise", on_invoke="raise", on_output="raise")


def _candidate_policy(policy: Policy) -> Policy:
    """A candidate's failures are canary figures: it raises (counted as errors) and lets OOD through (counted)."""
    return dataclasses.replace(_strict(policy), on_ood="allow", on_latency="allow")


def serve(root: str | Path, **kwargs: Any) -> ServedModel:
    """Serve a device store's active version, following activations between calls.

    Keywords as ``ServedModel`` (trusted_keys, poll_s, canary_wait, reference_rate, rollback) and,
    for each loaded version, ``EdgeModel.load`` (policy, num_threads, ...).

    Example: ``serve("/var/lib/app/models").predict(x)``
    """
    return ServedModel(root, **kwargs)
