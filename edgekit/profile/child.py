"""The measurement itself, run in a fresh process so nothing earlier pollutes its memory figures.

Standalone on purpose: it needs only the stdlib, numpy, an interpreter package
(ai_edge_litert, tflite_runtime or tensorflow) and optionally psutil, so the same
script runs on a device that has no edgekit. It reaches the model through the engine's
standalone layer, edgekit/engine/tflite_interp.py (the one place that calls an interpreter:
package discovery and the XNNPACK retry are written there once). Over SSH the parent pipes
it, with machine.py, memory.py, edgekit/quant.py and tflite_interp.py bundled in front (see
``bundle_source()``), to ``python3 - CONFIG_JSON``.

Protocol: one JSON config as argv[1]; ``EDGEKIT-PID <pid>`` first on stderr (the process
group to kill on a timeout or Ctrl-C, also on a remote device), then progress lines
``EDGEKIT-PROGRESS <phase> <done> <total>``; the result as one line ``EDGEKIT-RESULT <json>``
on stdout. On failure the result is ``{"error": {"kind": ..., "message": ...}}`` and the exit code 3.
With ``timeout_s`` in the config the child also kills its own measuring process after that
long, so a device whose parent vanished (lost connection) does not keep a hung model running.

Latency is the wall time of the raw session's ``invoke`` alone (perf_counter_ns);
setting inputs happens outside the timed region, as in a minimal timing loop.

Example (locally, without the CLI):
    $ python edgekit/profile/child.py '{"model": "m.tflite", "runs": 50, "threads": 1}'
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import signal
import sys
import time

if __package__:
    from . import machine, memory
else:  # run as a script, or piped with the modules bundled into sys.modules
    import machine  # type: ignore[no-redef]
    import memory  # type: ignore[no-redef]

# Deliberate twins: this file must not import edgekit (it is piped alone to devices that
# lack it), so _PACKAGES and import_interpreter() repeat edgekit.engine.tflite (_CANDIDATES,
# get_backend), and load_model() repeats backends.make_interpreter's XNNPACK fallback.
# A fix in one belongs in the other too.

RESULT_TAG = "EDGEKIT-RESULT "
RUSAGE_TAG = "EDGEKIT-RUSAGE "
PROGRESS_TAG = "EDGEKIT-PROGRESS "
PID_TAG = "EDGEKIT-PID "
ERROR_EXIT = 3
# Test hook, used only by tests/profile: a config key naming the point ("load" or "runs")
# where the child sleeps forever, to prove timeouts and Ctrl-C kill what was started; "crash:load"
# kills it there with SIGSEGV (a hostile model's crash is undefined behaviour: whether it faults
# depends on the heap's layout, and over one SSH session here it stopped faulting).
TEST_HOOK_HANG = "test_hook_hang_at"
MB = float(2**20)

PER_OP_UNAVAILABLE = (
    "the Python interpreter packages (ai-edge-litert, tflite-runtime, tf.lite) expose no op profiler; "
    "use --adb with LiteRT's benchmark_model for per-op timings"
)


class ChildError(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _mb(value):
    return None if value is None else round(value / MB, 3)


def _sibling(name: str, relpath: str):
    """An edgekit module this script may run without its package: ``quant`` (edgekit/quant.py, numpy
    only: imported once numpy is known to be there) or ``tflite_interp`` (edgekit/engine/tflite_interp.py).

    In the package it is imported normally; piped over SSH it was bundled into sys.modules
    under ``name``; run as a script it is read from ``relpath`` under edgekit/.
    """
    if __package__:
        return importlib.import_module({"quant": "..quant", "tflite_interp": "..engine.tflite_interp",
                                        "onnx_interp": "..engine.onnx_interp"}[name], __package__)
    if name in sys.modules:
        return sys.modules[name]
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), relpath)
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # before exec: dataclasses and friends look the module up
    spec.loader.exec_module(mod)
    return mod


def _quant():
    return _sibling("quant", "quant.py")


def _interp(model: str = ""):
    """The engine's raw layer for the model: onnx_interp for .onnx files, else tflite_interp."""
    _sibling("tflite_interp", os.path.join("engine", "tflite_interp.py"))  # onnx_interp builds on it
    if model.lower().endswith(".onnx"):
        return _sibling("onnx_interp", os.path.join("engine", "onnx_interp.py"))
    return _sibling("tflite_interp", os.path.join("engine", "tflite_interp.py"))


def _hang_if(cfg: dict, point: str) -> None:
    if cfg.get(TEST_HOOK_HANG) == point:
        while True:
            time.sleep(3600)
    if cfg.get(TEST_HOOK_HANG) == "crash:" + point:
        import signal

        os.kill(os.getpid(), signal.SIGSEGV)


def custom_op_name(text: str) -> str | None:
    """The op named by TFLite's "unresolved custom op: NAME" message, or None."""
    m = re.search(r"unresolved custom op: ([^\s.]+)", text)
    return m.group(1) if m else None


def import_interpreter(wanted: str | None, model: str = ""):
    """The engine package for the model (tflite_interp.Backend): ``wanted``, else the first one installed;
    onnxruntime for an .onnx file."""
    onnx = model.lower().endswith(".onnx")
    try:
        return _interp(model).import_backend() if onnx else _interp(model).import_backend(wanted)
    except ImportError as err:
        need = "onnxruntime (Python 3.11+, x86_64 or aarch64)" if onnx else "ai-edge-litert (tflite-runtime on armv7l)"
        raise ChildError("missing_dependency", f"{err} on {sys.executable}; pip install numpy {need}") from None


def load_model(backend, path: str, threads: int, load: dict | None = None):
    """A raw session, allocated; for a .tflite without default delegates when XNNPACK cannot prepare the
    graph. The first invoke stays unmeasured here (verify=False): it is timed as first_inference_ms.
    ``load``: {"delegate": library, "delegate_options": {...}, "signature": name} (tflite_interp.open_raw)."""
    ti = _interp(path)
    load = {k: v for k, v in (load or {}).items() if k in ("delegate", "delegate_options", "signature") and v}
    if path.lower().endswith(".onnx"):
        try:
            return ti.open_raw(backend, path, threads=threads)
        except ti.errors(backend) as err:
            first = " ".join(str(err).split())[:300]
            raise ChildError("load", f"onnxruntime cannot load this model: {first}") from None
    try:
        return ti.open_raw(backend, path, threads=threads, verify=False, **load)
    except ti.INTERPRETER_ERRORS as err:
        stage = getattr(err, "stage", "load")
        if stage in ("delegate", "signature"):
            first = " ".join(ln.strip() for ln in str(err).splitlines()[:2] if ln.strip())[:300]
            raise ChildError(stage, first) from None
        custom = custom_op_name(str(err))
        if custom:
            raise ChildError("custom_op", f"unresolved custom op {custom}") from None
        first = " ".join(ln.strip() for ln in str(err).splitlines()[:2] if ln.strip())[:300]
        raise ChildError("load", f"the interpreter cannot load this model: {first}") from None


def _shape(detail) -> tuple[int, ...]:
    return tuple(int(d) if d > 0 else 1 for d in detail["shape"])


def _random_input(np, rng, detail, ranges):
    """Seeded random data: uniform in the input's calibration range [lo, hi] when known
    (quantized with the input's scale for an integer input), else [0, 1) for floats
    and a wide integer range for integers."""
    shape = _shape(detail)
    dtype = np.dtype(detail["dtype"])
    known = ranges.get(detail["name"])
    scale, zero = detail.get("quantization", (0.0, 0))
    if dtype.kind == "f" or (dtype.kind in "iu" and known and scale):
        lo, hi = known or (0.0, 1.0)
        x = rng.uniform(lo, hi, size=shape).astype(np.float32)
        return x.astype(dtype) if dtype.kind == "f" else _quant().quantize(x, scale, zero, dtype)
    if dtype.kind in "iu" and known:  # an integer input with a calibration range (a sample rate: 16000)
        return rng.integers(int(np.ceil(known[0])), int(np.floor(known[1])), size=shape, endpoint=True).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -(2**15)), min(info.max, 2**15 - 1)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 1, size=shape, endpoint=True).astype(bool)
    raise ChildError("input", f"input {detail['name']!r}: cannot make random {dtype} data; "
                              f"pass --input {detail['name']}=FILE.npy")


def fit_file_array(np, arr, detail, where):
    """Samples (list of arrays of the input's shape and dtype) from one array in a file."""
    want = [int(d) for d in detail["shape"]]  # -1: any size (an ONNX audio input [batch, samples])

    def fits(got, wanted):
        return len(got) == len(wanted) and all(w < 0 or w == g for w, g in zip(wanted, got))

    arr = np.asarray(arr)
    if want and fits(arr.shape, want[1:]) and not fits(arr.shape, want):
        arr = arr[None]
    if want and want[0] in (1, -1) and fits(arr.shape[1:], want[1:]) and arr.shape[0] > 0:
        samples = [arr[i : i + 1] for i in range(arr.shape[0])]  # samples along a leading batch: one at a time
    elif fits(arr.shape, want):  # one call's input in the model's own layout (a state [2, 1, 128], a scalar)
        samples = [arr]
    else:
        raise ChildError("input", f"{where}: input {detail['name']!r} has shape {list(_shape(detail))}; "
                                  f"the file holds {list(arr.shape)}")
    dtype = np.dtype(detail["dtype"])
    scale, zero = detail.get("quantization", (0.0, 0))
    if dtype.kind in "iu" and arr.dtype.kind == "f" and scale:  # float data for a quantized input
        quantize = _quant().quantize
        return [quantize(s, scale, zero, dtype) for s in samples]
    return [s.astype(dtype) for s in samples]


def make_inputs(np, details, spec):
    """One list of samples per input: from a file where ``spec["files"]`` names one, else seeded random.

    ``spec``: {"seed": 0, "ranges": {tensor name: [lo, hi]}, "files": {tensor name: {"path", "key"}}};
    ``key`` is the array's name in a .npz, None for a .npy. The parent has matched the user's
    names to the tensor names and checked the shapes; this is the same check on the device.
    """
    rng = np.random.default_rng(spec.get("seed", 0))
    files, loaded, out = spec.get("files") or {}, {}, []
    for d in details:
        src = files.get(d["name"])
        if src is None:
            out.append([_random_input(np, rng, d, spec.get("ranges") or {})])
            continue
        path = os.path.expanduser(src["path"])
        if path not in loaded:
            try:
                loaded[path] = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as err:
                raise ChildError("input", f"{src['path']}: cannot read input file ({err})") from None
        data, key = loaded[path], src.get("key")
        if key is not None:
            if not hasattr(data, "files") or key not in data.files:
                raise ChildError("input", f"{src['path']}: no array named {key!r}")
            data = data[key]
        where = src["path"] + (f"[{key}]" if key else "")
        out.append(fit_file_array(np, data, d, where))
    return out


class Progress:
    """Progress lines on stderr, about fifty per phase (outside the timed region)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def step(self, phase: str, done: int, total: int) -> None:
        if self.enabled and (done == total or done % max(1, total // 50) == 0):
            sys.stderr.write(f"{PROGRESS_TAG}{phase} {done} {total}\n")
            sys.stderr.flush()


def measure(cfg: dict) -> dict:
    """Load, warm up and time the model described by ``cfg``; returns the raw result dict."""
    runs, warmup, threads = int(cfg.get("runs", 100)), int(cfg.get("warmup", 10)), int(cfg.get("threads", 1))
    progress = Progress(bool(cfg.get("progress", False)))
    sampler = memory.PeakSampler(float(cfg.get("sample_interval_ms", 1.0)) / 1e3)
    start = memory.rss_bytes()
    with sampler:
        try:
            import numpy as np
        except ImportError:
            raise ChildError("missing_dependency",
                             f"numpy is not installed for {sys.executable}; pip install numpy") from None
        backend = import_interpreter(cfg.get("backend"), cfg["model"])
        baseline = memory.rss_bytes()
        model = os.path.expanduser(cfg["model"])  # "~/..." from --remote-dir reaches us unexpanded
        _hang_if(cfg, "load")
        session = load_model(backend, model, threads, cfg.get("load"))
        after_load = memory.rss_bytes()
        details = session.input_details
        inputs = make_inputs(np, details, cfg.get("input", {}))
        n_samples = max(len(s) for s in inputs)

        def feed(i):
            session.set_inputs([samples[i % len(samples)] for samples in inputs])

        invoke = session.invoke
        feed(0)
        t0 = time.perf_counter()
        invoke()
        first_ms = (time.perf_counter() - t0) * 1e3
        for i in range(warmup):
            if n_samples > 1:
                feed(i)
            invoke()
            progress.step("warmup", i + 1, warmup)
        # The arena is allocated by now: sample sparsely so the sampler cannot slow the timed runs.
        sampler.new_phase(float(cfg.get("runs_sample_interval_ms", 20.0)) / 1e3)
        _hang_if(cfg, "runs")
        clock = time.perf_counter_ns
        samples_ns = [0] * runs
        wall0 = time.perf_counter()
        for i in range(runs):
            if n_samples > 1:
                feed(i)
            t0 = clock()
            invoke()
            samples_ns[i] = clock() - t0
            progress.step("runs", i + 1, runs)
        wall_s = time.perf_counter() - wall0
        uss_pss = memory.uss_pss_bytes()
    return {
        "interpreter": {"package": backend.name, "version": backend.version,
                        "default_delegates": session.default_delegates,
                        **({k: v for k, v in cfg["load"].items() if v} if cfg.get("load") else {})},
        "threads": threads,
        "inputs": [
            {"name": d["name"], "shape": [int(v) for v in s[0].shape], "dtype": np.dtype(d["dtype"]).name,
             "samples": len(s)}
            for d, s in zip(details, inputs)
        ],
        "timing": {
            **{k: round(v, 4) for k, v in session.times.items()},
            "first_inference_ms": round(first_ms, 4),
            "warmup": warmup,
            "runs": runs,
            "wall_s": round(wall_s, 4),
            "samples_ms": [round(ns / 1e6, 6) for ns in samples_ns],
        },
        "memory": {
            "start_rss_mb": _mb(start),  # the bare Python process
            "baseline_rss_mb": _mb(baseline),  # + numpy and the interpreter package
            "after_load_rss_mb": _mb(after_load),
            "peak_rss_sampled_mb": _mb(sampler.peak_bytes),
            "peak_rss_sampled_runs_mb": _mb(sampler.phase_peak_bytes),
            "ru_maxrss_mb": _mb(memory.ru_maxrss_bytes()),
            "uss_mb": _mb(uss_pss["uss"]),
            "pss_mb": _mb(uss_pss["pss"]),
            "uss_pss_source": uss_pss["source"],
            "sample_interval_ms": float(cfg.get("sample_interval_ms", 1.0)),  # until the timed runs
            "runs_sample_interval_ms": sampler.interval_s * 1e3,
            "rss_samples": sampler.samples,
        },
        "per_op": {"available": False, "reason": PER_OP_UNAVAILABLE},
    }


def run(argv: list[str]) -> int:
    """Measure and print the result line; the exit code."""
    try:
        if len(argv) != 2:
            raise ChildError("usage", "usage: child.py CONFIG_JSON")
        cfg = json.loads(argv[1])
        before = machine.describe()
        result = measure(cfg)
        after = machine.describe()
        result["machine"] = before
        result["machine_after"] = {k: after[k] for k in ("temperature_c", "throttling", "cpu_freq_mhz", "load_average")}
        code = 0
    except ChildError as err:
        result, code = {"error": {"kind": err.kind, "message": str(err)}}, ERROR_EXIT
    except Exception as err:  # report, never leave the parent without a result
        result, code = {"error": {"kind": "internal", "message": f"{type(err).__name__}: {err}"}}, ERROR_EXIT
    sys.stdout.write(RESULT_TAG + json.dumps(result) + "\n")
    sys.stdout.flush()
    return code


def announce_pid() -> None:
    """Lead a process group of our own and say its id: the parent kills the group on a timeout
    or Ctrl-C (over SSH with ``kill -KILL -PID``: killing ssh alone leaves the device's process running)."""
    try:
        os.setpgid(0, 0)  # fails harmlessly when already a session leader (start_new_session, sshd)
    except OSError:
        pass
    sys.stderr.write(f"{PID_TAG}{os.getpgrp()}\n")
    sys.stderr.flush()


def main(argv: list[str]) -> int:
    """Measure in a fork of this still-small process.

    Why fork: Linux keeps ru_maxrss across exec, so a child started from a big
    process (a notebook with TensorFlow loaded) would report its parent's peak.
    A fork of this bare interpreter starts a fresh high-water mark. Its OS-side
    rusage (wait4) is printed too, as an account independent of the sampler.
    """
    announce_pid()
    try:
        cfg = json.loads(argv[1]) if len(argv) == 2 else {}
    except ValueError:
        cfg = {}
    _hang_if(cfg, "start")  # before the deadline below exists: only the parent's kill can end this
    if not hasattr(os, "fork"):
        return run(argv)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 70  # EX_SOFTWARE, if run() itself blows up
        try:
            code = run(argv)
        finally:
            os._exit(code)
    timed_out = []
    timeout_s = cfg.get("timeout_s")
    if timeout_s:
        def stop(signum, frame):  # wait4 below resumes after this (PEP 475) and reaps the killed child
            timed_out.append(True)
            os.kill(pid, signal.SIGKILL)

        signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, float(timeout_s))
    _, status, usage = os.wait4(pid, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KB on Linux
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    if timed_out:
        message = f"did not finish within {timeout_s:g} s; the measuring process was killed"
        sys.stdout.write(RESULT_TAG + json.dumps({"error": {"kind": "timeout", "message": message}}) + "\n")
        sys.stdout.flush()
        return ERROR_EXIT
    # The signal is said here too: over SSH a remote death by signal reaches us only as exit code 255.
    sys.stdout.write(RUSAGE_TAG + json.dumps({"ru_maxrss_mb": _mb(usage.ru_maxrss * scale), "signal": sig}) + "\n")
    sys.stdout.flush()
    if sig is not None:  # die the same way, so a local parent sees the signal
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
