"""EdgeModel: a converted model plus the guard its manifest makes possible.

``predict`` = coerce input -> input checks -> quantize -> invoke -> dequantize -> output
checks -> policy (fallback, default, raise, allow) -> monitoring. Everything a call needs
(bounds, reference arrays, quantization parameters) is prepared at load time.

Thread safety: predict may be called from many threads. Interpreters come from a pool
(``pool_size``, default 1: a lock around set_tensor/invoke/get_tensor); checks work on
the caller's own arrays; the monitor, incident log and shadow queue take short locks.
For large inputs on slow models the input checks overlap the invoke on a helper thread
(``overlap``), so their cost hides behind inference on a multi-core device.

Example:
    >>> from edgekit.runtime import EdgeModel, Policy
    >>> model = EdgeModel.load("digits-int8.tflite", fallback="digits-fp32.tflite",
    ...                        policy=Policy(on_ood="fallback"))       # doctest: +SKIP
    >>> pred = model.predict("seven.png")                               # doctest: +SKIP
    >>> pred.label, pred.ok                                             # doctest: +SKIP
    ('7', True)
    >>> model.health()["input"]["drift"]                                # doctest: +SKIP
    'stable'
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    EdgekitError, InferenceError, InputValidationError, LatencyBudgetError, ManifestError, ModelLoadError,
    OutOfDistributionError, OutputValidationError, TamperedModelError, UsageError,
)
from ..fsutil import read_bytes, sha256_bytes
from ..manifest import Manifest
from .checks import InputGuard, OutputGuard
from .incidents import IncidentLog
from .inputs import InputCoercer
from .monitor import Monitor, Shadow
from .policy import Policy
from .prediction import Prediction
from .interpreter_pool import Runner

_perf = time.perf_counter


def _verify(data: bytes, manifest: Manifest | None, label: str, policy: Policy) -> str:
    digest = sha256_bytes(data)
    want = manifest.model.sha256 if manifest else None
    if policy.verify_sha256 and want and want != digest:
        raise TamperedModelError(
            f"{label}: sha256 {digest[:12]}... does not match the manifest's {want[:12]}...; the file was "
            "changed after conversion: re-convert it, or load with Policy(verify_sha256=False) if you trust it")
    return digest


_FALLBACK_POLICY = Policy(on_load="raise", on_invoke="raise", on_output="raise")


class EdgeModel:
    """A guarded TensorFlow Lite model. Create with ``EdgeModel.load``."""

    def __init__(self) -> None:  # use load(); attributes are set there
        raise UsageError("create an EdgeModel with EdgeModel.load(path, ...)")

    # ---- loading -----------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, *, fallback: "str | Path | EdgeModel | None" = None,
             policy: Policy | None = None, num_threads: int | None = None, backend: str | None = None,
             pool_size: int = 1, incident_log: str | Path | None = None, shadow: float = 0.0,
             reference: "str | Path | EdgeModel | None" = None, monitor_window: int = 500,
             overlap: bool | None = None, trusted_keys: "list[str | Path] | None" = None) -> "EdgeModel":
        """Load ``path`` (a .tflite with its manifest next to it) behind the guard.

        fallback: a model (path or EdgeModel) used when the policy says "fallback".
        shadow: share of calls (0..1) also run through ``reference`` (default: the fallback)
        on a background thread, to measure disagreement.
        overlap: run the input checks on a helper thread while the interpreter works (None: when
        the machine has 2+ cores and one invoke takes over 10x the checks, measured at load).
        trusted_keys: public keys (PEM); the model and its manifest must carry a signature by one of
        them (edgekit sign), checked before any byte reaches an interpreter (SignatureError otherwise).
        """
        self = object.__new__(cls)
        self.policy = policy = policy or Policy()
        self.path = Path(path)
        self.incident_log = IncidentLog(incident_log, log_inputs=policy.log_inputs)
        self.fallback = cls._load_fallback(fallback, num_threads, backend)
        self.load_error: str | None = None
        self.runner: Runner | None = None
        label = str(path)
        try:
            data = read_bytes(path, ModelLoadError, "model file")
            if trusted_keys is not None:  # [store hook] signature before any byte reaches an interpreter
                self._check_signature(data, trusted_keys)
            self.manifest = Manifest.find(path)
            self.sha256 = _verify(data, self.manifest, label, policy)
            self.runner = Runner(data, label=label, num_threads=num_threads, backend=backend,
                                 probe=policy.probe, pool_size=pool_size)
            self._check_manifest_matches(label)
        except (ModelLoadError, ManifestError) as err:
            if policy.on_load != "fallback" or self.fallback is None:
                raise
            self.load_error = str(err)
            self.manifest = self.fallback.manifest
            self.sha256 = getattr(self, "sha256", None)
            self.incident_log.add("load", str(err), "fallback", self.sha256, fallback=str(self.fallback.path))
        self._prepare(monitor_window)
        self._overlap = self._overlap_executor(overlap, pool_size)
        self.shadow = None
        ref = reference if reference is not None else self.fallback
        if shadow:
            if ref is None:
                raise UsageError("shadow mode needs a reference model: pass reference= or fallback=")
            ref = ref if isinstance(ref, EdgeModel) else cls.load(ref, policy=_FALLBACK_POLICY,
                                                                   num_threads=num_threads, backend=backend)
            self.shadow = Shadow(lambda b: ref.predict(b).outputs[0], shadow, classifier=self.classifier)
        return self

    # ---- [store hooks] (edgekit.store, edgekit.signing) -----------------------
    @classmethod
    def from_store(cls, store: str | Path, **kwargs: Any):
        """Serve a device store's active version, following activations between calls (edgekit.store).

        Example: ``EdgeModel.from_store("/var/lib/app/models").predict(x)``
        """
        from ..store.served import ServedModel

        return ServedModel(store, **kwargs)

    def _check_signature(self, data: bytes, trusted_keys) -> None:
        from ..errors import SignatureError
        from ..signing import verify

        try:
            verify(self.path, trusted_keys, data=data)
        except SignatureError as err:
            self.incident_log.add("signature", str(err), "raise", sha256_bytes(data))
            raise

    @classmethod
    def _load_fallback(cls, fallback, num_threads, backend) -> "EdgeModel | None":
        if fallback is None or isinstance(fallback, EdgeModel):
            return fallback
        # The fallback answers when the primary cannot: it must not itself fall back or stay silent.
        return cls.load(fallback, policy=_FALLBACK_POLICY, num_threads=num_threads, backend=backend)

    def _check_manifest_matches(self, label: str) -> None:
        m = self.manifest
        if m is None or not m.inputs:
            return
        got = self.runner.input
        spec = m.match(got)
        if spec is None:
            raise ManifestError(f"{label}: the manifest names inputs {[t.name for t in m.inputs]} but the model's "
                                f"input is {got.name!r}; the manifest belongs to another model")
        if list(spec.shape[1:]) != list(got.shape[1:]) or spec.dtype != got.dtype:
            raise ManifestError(f"{label}: the manifest describes input {spec.shape} {spec.dtype} but the model "
                                f"has {got.shape} {got.dtype}; the manifest belongs to another model")

    def _prepare(self, window: int) -> None:
        """Everything predict needs, computed once."""
        m, pol = self.manifest, self.policy
        src = self.runner if self.runner is not None else self.fallback.runner
        mspec = m.match(src.input) if m is not None else None
        stats = m.input_stats(mspec.name) if mspec is not None else None
        if stats is not None and stats.channels != (src.sample_shape[-1] if src.sample_shape else 1):
            stats = None  # statistics for another layout: guard without them rather than misjudge
        self.labels = (m.labels if m else None) or None
        self.classifier = bool(src.probability[0]) or (m is not None and m.task == "classification")
        self.coerce = InputCoercer(src.sample_shape, m.preprocessing_for(mspec.name) if mspec else None, pol.max_batch,
                                   pol.max_image_pixels)
        quant = self.runner.quant if self.runner is not None else None
        self.input_guard = InputGuard(src.sample_shape, stats, quant, pol)
        out0 = src.outputs[0]
        self.output_guard = OutputGuard(src.probability[0], out0.dtype.startswith("float"),
                                        float(out0.scale or 0.0) * max(1, int(np.prod(out0.shape[1:]))), pol)
        in0 = src.input
        self.monitor = Monitor(stats, src.sample_shape, window=window,
                               output_size=int(np.prod([d for d in out0.shape[1:] if d > 0] or [1])),
                               labels=self.labels,
                               in_quant=(in0.scale, in0.zero_point) if in0.quantized else None,
                               out_quant=(out0.scale, out0.zero_point) if out0.quantized else None)
        self._raw_out_quant = out0.quantized
        self._budget = pol.latency_budget_ms
        self._default = None if pol.default is None else self._check_default(pol.default, out0)

    def _overlap_executor(self, overlap: bool | None, pool_size: int):
        if self.runner is None or overlap is False:
            return None
        if overlap is None:
            if (os.cpu_count() or 1) < 2:
                return None
            zeros = np.zeros((1,) + tuple(max(d, 1) for d in self.runner.sample_shape), np.float32)
            guard_s = min(_timed(self.input_guard, zeros) for _ in range(5))
            invoke_s = min(_timed(lambda z: self.runner.run(z), zeros) for _ in range(3))
            if invoke_s < 10 * guard_s:
                return None
        return ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="edgekit-checks")

    def _check_default(self, value: Any, out0) -> np.ndarray:
        arr = np.asarray(value, np.float32)
        try:
            np.broadcast_to(arr, tuple(d if d > 0 else 1 for d in out0.shape[1:]))
        except ValueError:
            raise UsageError(f"Policy(default=...) has shape {arr.shape}; the first output per sample "
                             f"is {out0.shape[1:]}") from None
        return arr

    # ---- predict -----------------------------------------------------------
    def predict(self, x: Any) -> Prediction:
        """Run the guarded model on one sample or a batch; see the module docstring.

        Example: ``model.predict(np.zeros((8, 8, 1), np.float32)).top_k(3)``
        """
        t0 = _perf()
        pending = None
        try:
            batch, batched = self.coerce(x)
            if self._overlap is not None and self.runner is not None:
                # Large input, slow model: the input checks run on another core while the
                # interpreter (which releases the GIL) works; their verdict is applied after.
                pending = self._overlap.submit(self.input_guard, batch)
                iv = None
            else:
                iv = self.input_guard(batch)
        except InputValidationError as err:
            return self._bad_input(err, x)
        if self.runner is None:  # the primary did not load: the fallback answers everything
            return self._via_fallback(batch, batched, iv, t0)
        err = None
        try:
            outs, q, raw = self.runner.run_kept(batch, iv is not None and iv.in_qrange)
        except (InputValidationError, InferenceError) as e:
            err = e
        if pending is not None:
            try:
                iv = pending.result()
            except InputValidationError as bad:
                # an input error wins over the invoke error it caused; the model's answer to it is discarded
                return self._bad_input(bad, x)
        if isinstance(err, InputValidationError):
            return self._bad_input(err, x)
        if err is not None:
            return self._invoke_failed(err, batch, batched, iv, t0)
        ov = self.output_guard(outs)
        latency = (_perf() - t0) * 1000.0
        pred = Prediction(self, outs, batched, iv, ov, latency)
        if iv.flagged is not None or ov.flagged is not None or (self._budget is not None and latency > self._budget):
            self._apply_policy(pred, batch)
        if pred.incidents:  # outputs may have been replaced: record what the caller got
            self.monitor.record(batch, pred.outputs[0], iv.ood, pred.flagged, latency)
        else:  # the monitor keeps our own quantized input and raw output by reference
            self.monitor.record(batch, outs[0], iv.ood, None, latency, q, raw[0] if self._raw_out_quant else None)
        if self.shadow is not None:
            self.shadow.offer(batch, outs[0])
        return pred

    __call__ = predict

    # ---- the policy, off the hot path --------------------------------------
    def _incident(self, pred: Prediction | None, kind: str, reason: str, action: str, x: Any = None,
                  rows: np.ndarray | None = None) -> dict[str, Any]:
        samples = None if rows is None else [int(i) for i in np.flatnonzero(rows)]
        rec = self.incident_log.add(kind, reason, action, self.sha256, x=x, samples=samples)
        if pred is not None:
            pred.incidents.append(rec)
        return rec

    def _replace(self, pred: Prediction, rows: np.ndarray, batch: np.ndarray, action: str, kind: str,
                 reason: str, error: type[EdgekitError]) -> None:
        """Apply ``action`` to the samples in ``rows``: allow, fallback, default or raise."""
        x = batch[rows]
        if action == "fallback" and self.fallback is None:
            action = "raise"
            reason += " (no fallback model loaded)"
        if action == "raise":
            self._incident(pred, kind, reason, "raise", x, rows)
            raise error(reason)
        if action == "fallback":
            try:
                fb = self.fallback.predict(x).outputs
            except EdgekitError as err:
                self._incident(pred, kind, f"{reason}; the fallback failed too: {err}", "raise", x, rows)
                raise error(f"{reason}; the fallback model failed too: {err}") from None
            for out, alt in zip(pred.outputs, fb):
                out[rows] = alt
        elif action == "default":
            pred.outputs[0][rows] = self._default
            for out in pred.outputs[1:]:
                out[rows] = 0
        if action != "allow":
            pred.set_source(rows, action)
        self._incident(pred, kind, reason, action, x, rows)

    def _apply_policy(self, pred: Prediction, batch: np.ndarray) -> None:
        pol, iv, ov = self.policy, pred._in, pred._out
        done = np.zeros(pred.n, bool)
        if iv.flagged is not None:
            why = "; ".join(c_str(c) for c in iv.checks(pred.n) if not c.ok)
            self._replace(pred, iv.flagged, batch, pol.on_ood, "ood", f"input unlike the calibration data: {why}",
                          OutOfDistributionError)
            done = iv.flagged.copy() if pol.on_ood in ("fallback", "default") else done
        if ov.flagged is not None and (ov.flagged & ~done).any():
            rows = ov.flagged & ~done
            why = "; ".join(c_str(c) for c in self.output_guard.checks(ov, pred.n) if not c.ok)
            self._replace(pred, rows, batch, pol.on_output, "output", f"output rejected: {why}",
                          OutputValidationError)
        if self._budget is not None and pred.latency_ms > self._budget:
            rows = np.ones(pred.n, bool)
            why = f"call took {pred.latency_ms:.2f} ms, over the {self._budget:g} ms budget"
            self._replace(pred, rows, batch, pol.on_latency, "latency", why, LatencyBudgetError)

    def _bad_input(self, err: InputValidationError, x: Any) -> Prediction:
        summary = x if isinstance(x, np.ndarray) else None
        if self.policy.on_input != "default":
            self._incident(None, "input", str(err), "raise", summary)
            raise err
        pred = self._default_prediction(1, False)
        self._incident(pred, "input", str(err), "default", summary)
        return pred

    def _default_prediction(self, n: int, batched: bool) -> Prediction:
        src = self.runner or self.fallback.runner
        shapes = [tuple(d if d > 0 else 1 for d in o.shape[1:]) for o in src.outputs]
        outs = [np.zeros((n,) + s, np.float32) for s in shapes]
        outs[0][:] = self._default
        pred = Prediction(self, outs, batched, None, None, 0.0)
        pred.set_source(np.ones(n, bool), "default")
        return pred

    def _invoke_failed(self, err: InferenceError, batch, batched, iv, t0) -> Prediction:
        action = self.policy.on_invoke
        if action == "fallback" and self.fallback is not None:
            try:
                outs = self.fallback.predict(batch).outputs
            except EdgekitError as fb_err:
                self._incident(None, "invoke", f"{err}; the fallback failed too: {fb_err}", "raise", batch)
                raise InferenceError(f"{err}; the fallback model failed too: {fb_err}") from None
            pred = Prediction(self, outs, batched, iv, None, (_perf() - t0) * 1000.0)
            pred.set_source(np.ones(pred.n, bool), "fallback")
        elif action == "default":
            pred = self._default_prediction(batch.shape[0], batched)
        else:
            self._incident(None, "invoke", str(err), "raise", batch)
            raise err
        self._incident(pred, "invoke", str(err), action, batch)
        return pred

    def _via_fallback(self, batch, batched, iv, t0) -> Prediction:
        fb = self.fallback.predict(batch)
        pred = Prediction(self, fb.outputs, batched, iv, fb._out, (_perf() - t0) * 1000.0)
        pred.set_source(np.ones(pred.n, bool), "fallback")
        self.monitor.record(batch, pred.outputs[0], iv.ood, iv.flagged, pred.latency_ms)
        return pred

    # ---- reporting ---------------------------------------------------------
    def health(self, *, wait_for_shadow: bool = False) -> dict[str, Any]:
        """Rolling input/output statistics, drift per input channel, incidents and shadow agreement."""
        src = self.runner or self.fallback.runner
        h: dict[str, Any] = {
            "model": {"file": str(self.path), "sha256": self.sha256, **src.describe()},
            "fallback_active": self.runner is None,
            "load_error": self.load_error,
        }
        h.update(self.monitor.snapshot())
        h["incidents"] = self.incident_log.counts()
        if self.shadow is not None:
            h["shadow"] = self.shadow.snapshot(wait=wait_for_shadow)
        return h

    def incidents(self) -> list[dict[str, Any]]:
        """The most recent incident records (up to 1,000), oldest first."""
        return self.incident_log.recent()

    def close(self) -> None:
        """Stop the shadow and overlap workers (the interpreters are freed with the object)."""
        if self.shadow is not None:
            self.shadow.close()
        if self._overlap is not None:
            self._overlap.shutdown(wait=True)
        if self.fallback is not None:
            self.fallback.close()

    def __enter__(self) -> "EdgeModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "fallback-only" if self.runner is None else "ok"
        return f"EdgeModel({str(self.path)!r}, {state}, policy={self.policy})"


def _timed(fn, arg) -> float:
    t0 = _perf()
    fn(arg)
    return _perf() - t0


def c_str(check) -> str:
    """A failed check in a few words, for incident reasons: "ood 3.10 (limit 1.00) in samples [0, 4]"."""
    text = check.name + ("" if check.value is None else f" {check.value}")
    text += "" if check.limit is None else f" (limit {check.limit})"
    return text + (f" in samples {list(check.failed)[:10]}" if check.failed else "")
