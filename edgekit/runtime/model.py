"""EdgeModel: a converted model plus the guard its manifest makes possible.

``predict`` runs six stages, each prepared at load time and each its own part:

1. coerce   (coerce.py, inputs.py)   input(s) -> one float32 batch per input;
2. validate (checks.InputChecks)     per input: NaN/Inf, range, int8 clipping, OOD score;
3. run      (interpreter_pool.Runner) quantize, invoke, dequantize;
4. outputs  (checks.OutputChecks)    per output: finite, a distribution, confidence; the
                                      output-side OOD score when the manifest's guard has one;
5. policy   (policy.PolicyEngine)    one ``act`` per failure kind: allow, fallback, default, raise;
6. record   (monitor.Monitor, Shadow, incidents.IncidentLog).

Several inputs and outputs: pass ``{name: value}`` or a list in ``model.input_names`` order
(a single input keeps every array, list and image form); outputs come in ``model.output_names``
order and by name (``pred["scores"]``). Names are the signature keys (Keras input and output
names) or, for files without a signature, tensor names; the order is the manifest's, else the
interpreter's. Interpreter tensors are always matched by name, never by position. A tensor batched
on another axis (a recurrent state [2, N, 128]) or on none (a scalar sample rate) is moved to and from
the guard's batch-first view by the Runner (layout.py); ``pred[name]`` gives it back in its own layout.

The "active" model is the primary's Runner, or the fallback's when the primary did not load:
shapes, names and blank outputs come from it (``self.active``).

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
    >>> model.health()["inputs"]["image"]["drift"]                      # doctest: +SKIP
    'stable'
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    InferenceError, InputValidationError, LatencyBudgetError, ManifestError, ModelLoadError,
    OutOfDistributionError, OutputValidationError, SignatureError, TamperedModelError, UsageError,
)
from ..engine.safeload import digest_of
from ..fsutil import read_bytes
from .. import manifest_cache
from ..manifest import Manifest, Preprocessing, manifest_path_for, role_of
from .checks import InputChecks, InputGuard, OutputChecks, OutputGuard, channels_of, input_guard
from .coerce import Coercer
from .incidents import IncidentLog
from .inputs import coercer_for
from .interpreter_pool import Runner
from .layout import layouts, sample_shape
from . import native
from .monitor import Monitor, Shadow
from .policy import Policy, PolicyEngine, outputs_of
from .prediction import Prediction

_perf = time.perf_counter
# Checks cheaper than this stay on the calling thread: handing them to the helper thread and back costs
# 30-60 us of CPU here (a future, two thread wake-ups), more than such checks save (bench_runtime.py: with
# the guard kernel the selfie segmenter's 31 us checks on the helper cost 1.075x CPU against 1.031x inline,
# for no wall-clock gain, so the floor is the hand-off's upper cost).
_OVERLAP_MIN_CHECKS_S = 60e-6
log = logging.getLogger("edgekit.runtime")


class TamperWarning(UserWarning):
    """A model file differs from the one its manifest describes (warned at load, whatever the policy)."""


def _verify(data: bytes, manifest: Manifest | None, label: str, policy: Policy) -> str:
    digest = digest_of(data).hex()  # the load probe's cache key reuses it
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
             overlap: bool | None = None,
             preprocessing: "str | Preprocessing | dict[str, Preprocessing] | None" = None,
             trusted_keys: "list[str | Path] | None" = None, delegate: str | None = None,
             delegate_options: dict[str, str] | None = None, signature: str | None = None) -> "EdgeModel":
        """Load ``path`` (a .tflite with its manifest next to it) behind the guard.

        fallback: a model (path or EdgeModel) used when the policy says "fallback".
        shadow: share of calls (0..1) also run through ``reference`` (default: the fallback)
        on a background thread, to measure disagreement with the primary model's own outputs.
        overlap: run the input checks on a helper thread while the interpreter works (None: when
        the machine has 2+ cores, the checks take 60 us or more and one invoke over 10x the checks,
        measured at load).
        preprocessing: for image inputs the manifest does not describe (published files): a
        ``--normalize`` preset ("0-1", "-1-1", "imagenet", "raw"), a Preprocessing, or one per input name.
        trusted_keys: public keys (PEM); the model and its manifest must carry a signature by one of
        them (edgekit sign), checked before the manifest is parsed or any byte reaches an interpreter
        (SignatureError, incident kind ``signature``).
        delegate: an external delegate library by name or path (``libedgetpu.so.1``), with its
        ``delegate_options``; the load probe loads it first, so a delegate that crashes is a refused load.
        signature: run this signature of a .tflite with several (by name; inputs and outputs take its names).

        A file whose sha256 differs from its manifest's is a security event: a ``tamper`` incident,
        a TamperWarning, ``health()["security"]``; with ``on_load="fallback"`` the fallback answers.
        """
        self = object.__new__(cls)
        self.policy = policy = policy or Policy()
        self.path = Path(path)
        self.incident_log = IncidentLog.for_policy(incident_log, policy)
        self.fallback = cls._load_fallback(fallback, num_threads, backend)
        self.load_error: str | None = None
        self.security: list[dict[str, Any]] = []
        self.runner: Runner | None = None
        self.manifest = None
        self.sha256 = None
        label = str(path)
        try:
            data = read_bytes(path, ModelLoadError, "model file")
            self.sha256 = self._check_integrity(data, label, trusted_keys)
            load = {k: v for k, v in (("delegate", delegate), ("delegate_options", delegate_options),
                                      ("signature", signature)) if v} or None
            self.runner = Runner(data, label=label, num_threads=num_threads, backend=backend,
                                 probe=policy.probe, pool_size=pool_size, probe_fill=_probe_fill(self.manifest),
                                 max_mb=policy.max_model_memory_mb, load=load)
            self._check_manifest_matches(label)
        except TamperedModelError as err:  # a security event: a bad signature or a changed file
            self._load_failed(err, "signature" if isinstance(err, SignatureError) else "tamper")
        except (ModelLoadError, ManifestError) as err:
            self._load_failed(err, "load")
        self.active: Runner = self.runner if self.runner is not None else self.fallback.active
        self._prepare(monitor_window, preprocessing)
        self._overlap = self._overlap_executor(overlap, pool_size)
        self.shadow = None
        ref = reference if reference is not None else self.fallback
        if shadow:
            if ref is None:
                raise UsageError("shadow mode needs a reference model: pass reference= or fallback=")
            ref = ref if isinstance(ref, EdgeModel) else cls.load(ref, policy=_FALLBACK_POLICY,
                                                                   num_threads=num_threads, backend=backend)
            ins, outs = self.input_names, self.output_names
            form = self.coerce_inputs.caller_form
            self.shadow = Shadow(lambda b: outputs_of(ref, ins, outs, b, form), shadow, classifier=self._classifiers,
                                 names=outs)
        return self

    def _check_integrity(self, data: bytes, label: str, trusted_keys) -> str:
        """The one integrity step: signed by a trusted key (when keys are given), then the file the
        manifest describes. Sets ``self.manifest``; returns the sha256.

        Raises SignatureError (incident kind "signature") or TamperedModelError ("tamper"); load()
        records, warns and shows either in health()["security"]."""
        if trusted_keys is None:
            self.manifest = manifest_cache.find(self.path)  # parsed once per manifest and machine
        else:  # before the manifest is parsed or any byte reaches an interpreter
            from ..signing import read_manifest, verify

            self.sha256 = digest_of(data).hex()
            # the manifest is read once: the bytes that verified are the bytes parsed (a swap cannot slip in)
            man = read_manifest(self.path)
            verify(self.path, trusted_keys, data=data, manifest_data=man)
            self.manifest = Manifest.from_bytes(man, str(manifest_path_for(self.path)))
        if self.manifest is not None and self.manifest.ignored:  # a newer writer; the device was not upgraded yet
            log.warning("%s: manifest revision %d is newer than this edgekit's; ignored %s (upgrade edgekit "
                        "for the guard features they carry)", label, self.manifest.revision,
                        ", ".join(self.manifest.ignored))
        return _verify(data, self.manifest, label, self.policy)

    def _load_failed(self, err: ModelLoadError | ManifestError, kind: str) -> None:
        fallback_ok = self.policy.on_load == "fallback" and self.fallback is not None
        if kind != "load":  # a security event: said loudly whatever the policy does next
            event = self.incident_log.add(kind, str(err), "fallback" if fallback_ok else "raise", self.sha256,
                                          file=str(self.path))
            self.security.append(event)
            log.warning("%s", err)
            warnings.warn(str(err), TamperWarning, stacklevel=3)
        if not fallback_ok:
            raise err
        self.load_error = str(err)
        self.manifest = self.fallback.manifest
        if kind == "load":
            self.incident_log.add("load", str(err), "fallback", self.sha256, fallback=str(self.fallback.path))

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
        if len(m.inputs) != len(self.runner.inputs):
            raise ManifestError(f"{label}: the manifest names {len(m.inputs)} inputs but the model has "
                                f"{len(self.runner.inputs)}; the manifest belongs to another model")
        for got in self.runner.inputs:
            spec = m.match(got)
            if spec is None:
                raise ManifestError(f"{label}: the manifest names inputs {[t.name for t in m.inputs]} but the "
                                    f"model's input is {got.name!r}; the manifest belongs to another model")
            if list(spec.sample_shape) != list(got.sample_shape) or spec.dtype != got.dtype:
                raise ManifestError(f"{label}: the manifest describes input {spec.name} as {spec.shape} "
                                    f"{spec.dtype} but the model has {got.shape} {got.dtype}; the manifest "
                                    "belongs to another model")

    def _order(self, specs, mspecs, output: bool) -> tuple[list[str], list[int], list]:
        """(names, runner positions, manifest specs) in the caller's order: the manifest's, else the runner's."""
        m = self.manifest
        matched = [m.match(s, output=output) if m is not None else None for s in specs]
        if mspecs and all(t is not None for t in matched) and len({id(t) for t in matched}) == len(specs):
            pos = sorted(range(len(specs)), key=lambda i: list(mspecs).index(matched[i]))
        else:
            pos = list(range(len(specs)))
        names = [matched[i].name if matched[i] is not None else specs[i].name for i in pos]
        return names, pos, [matched[i] for i in pos]

    def _prepare(self, window: int, preprocessing) -> None:
        """Everything predict needs, computed once."""
        m, pol, src = self.manifest, self.policy, self.active
        own = self.runner is not None  # our quantization parameters apply only when we run the model
        if own and m is not None and m.inputs:  # batch axes: the manifest's evidence over the file's guess
            src.set_layouts(layouts(src.inputs, [m.match(t) for t in src.inputs]),
                            layouts(src.outputs, [m.match(t, output=True) for t in src.outputs]))
        # -- inputs, in the caller's order
        names, pos, mspecs = self._order(src.inputs, m.inputs if m else None, False)
        self.input_names = names
        self._in_pos = pos  # caller's input i is the runner's input pos[i]
        self._feed = None if pos == list(range(len(pos))) else [pos.index(j) for j in range(len(pos))]
        ood_limit = pol.ood_limit(m.guard.ood_threshold if m is not None and m.guard is not None else None)
        coercers, guards, mon_in = [], [], []
        for name, j, mspec in zip(names, pos, mspecs):
            spec, axis = src.inputs[j], src.in_layouts[j].axis
            shape = sample_shape(spec.shape, axis)
            stats = m.input_stats(mspec.name) if mspec is not None else None
            flat = role_of(axis, len(spec.shape)) != "data"  # a state or a scalar: one channel of values
            if stats is not None and stats.channels != (1 if flat else channels_of(shape)):
                stats = None  # statistics for another layout: guard without them rather than misjudge
            pre = (m.preprocessing_for(mspec.name) if mspec is not None else None) or _preprocessing(
                preprocessing, name, shape, len(names))
            coercers.append(coercer_for(shape, pre, pol.max_batch, pol.max_image_pixels, axis))
            quant = (spec.scale, spec.zero_point, spec.dtype) if own and spec.quantized else None
            guards.append(input_guard(shape, stats, quant, pol, ood_limit=ood_limit))
            mon_in.append((name, stats, shape, (spec.scale, spec.zero_point) if own and spec.quantized else None))
        self.coerce_inputs = Coercer(names, coercers)  # input(s) -> ([one batch per input], batched)
        # ``coerce``: input -> (batch, batched) for one input, as callers of the single-input API use it
        # (the store feeds its canary that batch); for several inputs, coerce_inputs (a batch per input).
        self.coerce = coercers[0] if len(names) == 1 else self.coerce_inputs
        self.input_checks = InputChecks(names, guards)
        # one batch-first input and outputs: the runner's own fast path (run_one), no layout moves
        self._single = len(names) == 1 and src._moves is None
        self._coerce1, self._guard1 = coercers[0], guards[0]
        # -- outputs, in the caller's order
        onames, opos, _ = self._order(src.outputs, m.outputs if m else None, True)
        self.output_names = onames
        self._take = None if opos == list(range(len(opos))) else opos
        outs = [src.outputs[j] for j in opos]
        self._out_layouts = [src.out_layouts[j] for j in opos]  # Prediction gives batches back in these
        osamples = [sample_shape(o.shape, lay.axis) for o, lay in zip(outs, self._out_layouts)]
        probs = [bool(src.probability[j]) for j in opos]
        task = m.task if m is not None else "unknown"
        self._classifiers = [p or (i == 0 and task == "classification") for i, p in enumerate(probs)]
        self.classifier = any(self._classifiers)
        self.classifier_output = self._classifiers.index(True) if self.classifier else 0
        self.labels = (m.labels if m else None) or None
        oguards = [OutputGuard(p, o.dtype.startswith("float"),
                               float(o.scale or 0.0) * max(1, int(np.prod([d for d in s if d > 0] or [1]))),
                               pol) for p, o, s in zip(probs, outs, osamples)]
        g = m.guard if m is not None else None
        signal = None
        if g is not None and g.output_signal and self.classifier:
            signal = (self.classifier_output, g.output_signal, float(g.output_threshold),
                      probs[self.classifier_output])
        self.output_checks = OutputChecks(onames, oguards, signal)
        self._out1 = self.output_checks.single_guard  # one output, no signal: its guard directly
        self.monitor = Monitor(mon_in, [(n, int(np.prod([d for d in s if d > 0] or [1])),
                                         (o.scale, o.zero_point) if own and o.quantized else None)
                                        for n, o, s in zip(onames, outs, osamples)], window=window, labels=self.labels)
        self._raw_out_quant = own and any(o.quantized for o in outs)
        self._budget = pol.latency_budget_ms
        self._out_shapes = [tuple(d if d > 0 else 1 for d in s) for s in osamples]
        self._default = None if pol.default is None else self._check_default(pol.default, osamples[0])
        self.engine = PolicyEngine(pol, self.fallback, self._default, self._record, names, onames,
                                   form=self.coerce_inputs.caller_form)

    def _overlap_executor(self, overlap: bool | None, pool_size: int):
        if self.runner is None or overlap is False:
            return None
        if overlap is None:
            if (os.cpu_count() or 1) < 2:
                return None
            first = self.runner.first_run_ms
            if first is not None and first / 1e3 < 10 * _OVERLAP_MIN_CHECKS_S:
                return None  # the invoke (at most the first run) is too short for checks worth handing off
            zeros = [np.zeros((1,) + tuple(max(d, 1) for d in sample_shape(t.shape, lay.axis)), np.float32)
                     for t, lay in zip(self.active.inputs, self.active.in_layouts)]
            mine = self._to_caller(zeros) if self._feed is not None else zeros
            # the checks twice; the invoke from the load's own run on zeros (an upper bound: the interpreter
            # prepares during it), else one more run: enough for a 10x rule, and no model run added to the load
            try:
                guard_s = min(_timed(self.input_checks, mine) for _ in range(2))
                if guard_s < _OVERLAP_MIN_CHECKS_S:  # the hand-off to the helper would cost more than the checks
                    return None
                invoke_s = first / 1e3 if first is not None else _timed(self.runner.run, zeros)
            except (InputValidationError, InferenceError):  # zeros are no input for it (a sample rate of 0)
                return None
            if invoke_s < 10 * guard_s:
                return None
        return ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="edgekit-checks")

    def _to_caller(self, runner_order: list) -> list:
        return [runner_order[j] for j in self._in_pos]

    def _check_default(self, value: Any, sample0: tuple[int, ...]) -> np.ndarray:
        arr = np.asarray(value, np.float32)
        try:
            np.broadcast_to(arr, tuple(d if d > 0 else 1 for d in sample0))
        except ValueError:
            raise UsageError(f"Policy(default=...) has shape {arr.shape}; the first output per sample "
                             f"is {sample0}") from None
        return arr

    # ---- predict -----------------------------------------------------------
    def predict(self, x: Any) -> Prediction:
        """Run the guarded model on one sample or a batch; see the module docstring.

        Example: ``model.predict(np.zeros((8, 8, 1), np.float32)).top_k(3)``
        """
        t0 = _perf()
        pending = None
        single = self._single
        try:  # 1. coerce, 2. validate
            if single:  # one input: its coercer and guard directly (the hot path: no per-input lists)
                if type(x) is not np.ndarray and isinstance(x, Mapping):
                    x = self.coerce_inputs.value_of(x)
                batch, batched = self._coerce1(x)
                batches = [batch]
                checks = self._guard1
            else:
                batches, batched = self.coerce_inputs(x)
                checks = self.input_checks
            if self._overlap is not None:
                # Large input, slow model: the input checks run on another core while the
                # interpreter (which releases the GIL) works; their verdict is applied after.
                pending = self._overlap.submit(checks, batch if single else batches)
                iv = None
            else:
                iv = checks(batch if single else batches)
        except InputValidationError as err:
            return self._bad_input(err, x)
        if self.runner is None:  # the primary did not load: the fallback answers everything
            return self._without_model(batches, batched, iv, t0)
        err = None
        try:  # 3. run
            if single:
                outs, q, raws = self.runner.run_one(batch, iv is not None and iv.in_qrange)
                qs = [q]
            else:
                qrange = None if iv is None else iv.qrange
                feed = self._feed
                if feed is None:
                    outs, qs, raws = self.runner.run_kept(batches, qrange)
                else:
                    outs, qs, raws = self.runner.run_kept([batches[i] for i in feed],
                                                          None if qrange is None else [qrange[i] for i in feed])
                    qs = self._to_caller(qs)
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
            return self._invoke_failed(err, batches, batched, iv, t0)
        if self._take is not None:
            outs, raws = [outs[j] for j in self._take], [raws[j] for j in self._take]
        ov = self._out1(outs[0]) if self._out1 is not None else self.output_checks(outs)  # 4. outputs
        latency = (_perf() - t0) * 1000.0
        pred = Prediction(self, outs, batched, iv, ov, latency)
        if iv.flagged is not None or ov.flagged is not None or (self._budget is not None and latency > self._budget):
            self._resolve(pred, batches)  # 5. policy (replaces rows on copies: outs stay the model's own)
        # 6. record
        if pred.incidents:  # outputs may have been replaced: record what the caller got
            self.monitor.record(batches, pred.outputs, iv.ood_value, pred.flagged, latency)
        else:  # the monitor keeps our own quantized inputs and raw outputs by reference
            self.monitor.record(batches, outs, iv.ood_value, None, latency, qs, raws if self._raw_out_quant else None)
        if self.shadow is not None:
            self.shadow.offer(batches, outs)  # the primary's own outputs, never the fallback's answer
        return pred

    __call__ = predict

    # ---- the policy, off the hot path --------------------------------------
    def _record(self, pred: Prediction | None, kind: str, reason: str, action: str, x: Any = None,
                rows: np.ndarray | None = None) -> dict[str, Any]:
        samples = None if rows is None else [int(i) for i in np.flatnonzero(rows)]
        if isinstance(x, list):  # model inputs, caller's order
            x = x[0] if len(x) == 1 else dict(zip(self.input_names, x))
        rec = self.incident_log.add(kind, reason, action, self.sha256, x=x, samples=samples)
        if pred is not None:
            pred.incidents.append(rec)
        return rec

    def _resolve(self, pred: Prediction, batches: list[np.ndarray]) -> None:
        """Every failure of this call, in order: OOD (input or output side), output, latency."""
        pol, iv, ov, n = self.policy, pred._in, pred._out, pred.n
        done = np.zeros(n, bool)
        ood = _union(iv.flagged, ov.ood_flagged)
        if ood is not None:
            why = []
            if iv.flagged is not None:
                names = iv.flagged_names(ood) if iv.parts is not None else []
                where = f" ({', '.join(names)})" if names else ""
                why.append(f"input unlike the calibration data{where}: "
                           + "; ".join(c_str(c) for c in iv.checks(n) if not c.ok))
            if ov.ood_flagged is not None:
                why.append("output unlike the training data: " + "; ".join(
                    c_str(c) for c in self.output_checks.checks(ov, n) if not c.ok and c.kind == "ood"))
            self.engine.act(pred, ood, "ood", "; ".join(why), OutOfDistributionError, batches)
            done = ood.copy() if pol.on_ood in ("fallback", "default") else done
        bad = ov.output_flagged
        if bad is not None and (bad & ~done).any():
            why = "; ".join(c_str(c) for c in self.output_checks.checks(ov, n) if not c.ok and c.kind == "output")
            self.engine.act(pred, bad & ~done, "output", f"output rejected: {why}", OutputValidationError, batches)
        if self._budget is not None and pred.latency_ms > self._budget:
            why = f"call took {pred.latency_ms:.2f} ms, over the {self._budget:g} ms budget"
            self.engine.act(pred, np.ones(n, bool), "latency", why, LatencyBudgetError, batches)

    def _blank(self, n: int, batched: bool, iv) -> Prediction:
        """A prediction of zeros in the active model's output shapes, for the policy to fill in."""
        return Prediction(self, [np.zeros((n,) + s, np.float32) for s in self._out_shapes], batched, iv, None, 0.0)

    def _bad_input(self, err: InputValidationError, x: Any) -> Prediction:
        summary = x if isinstance(x, (np.ndarray, dict)) else None
        pred = None if self.policy.on_input != "default" else self._blank(1, False, None)
        if pred is None:
            self._record(None, "input", str(err), "raise", summary)
            raise err
        self.engine.act(pred, np.ones(1, bool), "input", str(err), InputValidationError, None, log=False)
        self._record(pred, "input", str(err), "default", summary)
        return pred

    def _invoke_failed(self, err: InferenceError, batches, batched, iv, t0) -> Prediction:
        pred = self._blank(batches[0].shape[0], batched, iv)
        self.engine.act(pred, np.ones(pred.n, bool), "invoke", str(err), InferenceError, batches)
        pred.latency_ms = (_perf() - t0) * 1000.0
        return pred

    def _without_model(self, batches, batched, iv, t0) -> Prediction:
        pred = self._blank(batches[0].shape[0], batched, iv)
        self.engine.act(pred, np.ones(pred.n, bool), "load", f"the primary model did not load: {self.load_error}",
                        ModelLoadError, batches, "fallback", log=False)
        pred.latency_ms = (_perf() - t0) * 1000.0
        self.monitor.record(batches, pred.outputs, iv.ood_value, iv.flagged, pred.latency_ms)
        return pred

    # ---- reporting ---------------------------------------------------------
    def health(self, *, wait_for_shadow: bool = False) -> dict[str, Any]:
        """Rolling statistics per input (drift per channel) and per output, incidents, security, shadow.

        ``inputs`` and ``outputs`` are keyed by name; ``input`` and ``output`` repeat the first ones.
        ``security["ok"]`` is False after a tampered file (even when the fallback answers)."""
        h: dict[str, Any] = {
            "model": {"file": str(self.path), "sha256": self.sha256, **self.active.describe(),
                      "input_names": self.input_names, "output_names": self.output_names,
                      "manifest_ignored": list(self.manifest.ignored) if self.manifest else []},
            "fallback_active": self.runner is None,
            "load_error": self.load_error,
            # how the clean-path checks run here: the compiled kernel, or numpy and why (native.py)
            "guard_kernel": "compiled" if native.kernel() is not None else f"numpy ({native.why_not()})",
            "security": {"ok": not self.security,
                         "events": [{k: e[k] for k in ("time", "kind", "reason", "action")} for e in self.security]},
        }
        h.update(self.monitor.snapshot())
        h["incidents"] = self.incident_log.counts()
        h["incident_log"] = self.incident_log.status()
        if self.shadow is not None:
            h["shadow"] = self.shadow.snapshot(wait=wait_for_shadow)
        return h

    @property
    def input_guard(self) -> InputGuard:
        """The first input's guard (``input_checks.guards`` has one per input)."""
        return self.input_checks.guards[0]

    @property
    def output_guard(self) -> OutputGuard:
        """The first output's guard (``output_checks.guards`` has one per output)."""
        return self.output_checks.guards[0]

    @property
    def security_ok(self) -> bool:
        """False after a security event at load (a tampered file), even when the fallback answers."""
        return not self.security

    def incidents(self) -> list[dict[str, Any]]:
        """The most recent incident records (up to 1,000), oldest first."""
        return self.incident_log.recent()

    def close(self) -> None:
        """Stop the shadow and overlap workers and close the incident file (interpreters go with the object)."""
        if self.shadow is not None:
            self.shadow.close()
        if self._overlap is not None:
            self._overlap.shutdown(wait=True)
        if self.fallback is not None:
            self.fallback.close()
        self.incident_log.close()

    def __enter__(self) -> "EdgeModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "fallback-only" if self.runner is None else "ok"
        return f"EdgeModel({str(self.path)!r}, {state}, inputs={self.input_names}, policy={self.policy})"


def _preprocessing(given, name: str, shape: tuple[int, ...], n_inputs: int) -> Preprocessing | None:
    """Image preprocessing the caller gave for an input the manifest does not describe."""
    if given is None or isinstance(given, Preprocessing):
        return given
    if isinstance(given, dict):
        return given.get(name)
    from ..data import default_preprocessing

    pre = default_preprocessing(shape, given)
    if pre is None and n_inputs == 1:
        raise UsageError(f"preprocessing={given!r}: input {name} has shape {list(shape)}, not an image "
                         "(height, width, 1 or 3 channels, fixed size); pass arrays instead")
    return pre


def _probe_fill(m: Manifest | None) -> dict[str, list[float]] | None:
    """The calibration means per input name, for the load probe's calibration-like run."""
    if m is None or m.calibration is None:
        return None
    fill = {}
    for t in m.inputs:
        st = m.input_stats(t.name)
        if st is not None:
            fill[t.name] = [round(float(v), 6) for v in st.mean]
            if t.tensor and t.tensor != t.name:
                fill[t.tensor] = fill[t.name]
    return fill or None


def _union(a, b):
    if a is None:
        return b
    return a if b is None else a | b


def _timed(fn, arg) -> float:
    t0 = _perf()
    fn(arg)
    return _perf() - t0


def c_str(check) -> str:
    """A failed check in a few words, for incident reasons: "ood 3.10 (limit 1.00) in samples [0, 4]"."""
    text = check.name + ("" if check.value is None else f" {check.value}")
    text += "" if check.limit is None else f" (limit {check.limit})"
    return text + (f" in samples {list(check.failed)[:10]}" if check.failed else "")
