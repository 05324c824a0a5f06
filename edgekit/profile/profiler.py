"""Profile a .tflite model: one fresh child process per thread count, assembled into one result.

The child (child.py) does the measuring; this module checks the input, starts
the child (locally here, over SSH in remote_ssh.py), turns its raw output into
the "edgekit.profile/1" document and maps its failures to one-line errors.

Example:
    >>> doc = profile_model("digits-int8.tflite", runs=200, threads=[1, 2])   # doctest: +SKIP
    >>> [(r["threads"], r["latency_ms"]["p50"]) for r in doc["rows"]]        # doctest: +SKIP
    [(1, 0.021), (2, 0.019)]
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from .. import __version__
from ..errors import EdgekitError, MissingDependencyError, ModelLoadError, RemoteError, UsageError
from ..fsutil import read_bytes, sha256_file
from . import child, feeds, latency_stats
from .processes import DEFAULT_TIMEOUT_S, GRACE_S, ProcessResult, ProfileTimeout, ProgressFn, run_process
from .render import plural
from .schema import METHOD, SCHEMA, check_device_result, check_fields

CHILD_SCRIPT = Path(child.__file__)
# Test hook (tests/profile only): the child sleeps forever at this point ("start", "load", "runs").
TEST_HOOK_ENV = "EDGEKIT_TEST_HOOK_HANG_AT"


def check_model(path: str | Path, *, tflite_only: bool = False) -> Path:
    """The path, if it is a readable .tflite flatbuffer or (unless ``tflite_only``) an ONNX model."""
    from ..engine import model_format

    p = Path(path)
    kind = model_format(p)
    if tflite_only and kind != "tflite":
        raise ModelLoadError(f"{p}: an ONNX model; --adb runs LiteRT's benchmark_model, which takes .tflite only: "
                             "profile it here or over --host")
    return p


def _manifest(path: Path):
    from ..manifest import Manifest

    try:
        return Manifest.find(path)
    except EdgekitError:  # a broken sidecar must not block profiling the model itself
        return None


def model_info(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    m = _manifest(path)
    return {
        "path": str(path),
        "file": path.name,
        "size_bytes": size,
        "size_mb": round(size / 2**20, 4),
        "sha256": sha256_file(path),
        "recipe": (m.recipe.name if m and m.recipe else None),
    }


def plan_inputs(model: Path, values) -> feeds.InputPlan:
    """What the child feeds each input (feeds.py): checked here, before any child starts."""
    return feeds.plan_inputs(model, values, manifest=_manifest(model))


def check_timeout(timeout_s: float | None) -> float:
    """The per-process wall-clock limit in seconds (None: the default, far above a normal run)."""
    if timeout_s is None:
        return DEFAULT_TIMEOUT_S
    if not timeout_s > 0:
        raise UsageError(f"--timeout must be a positive number of seconds, got {timeout_s}")
    return float(timeout_s)


def check_counts(runs: int, warmup: int) -> None:
    """UsageError for run counts the child cannot use (before anything is started or copied)."""
    if runs < 1:
        raise UsageError(f"--runs must be at least 1, got {runs}")
    if warmup < 0:
        raise UsageError(f"--warmup cannot be negative, got {warmup}")


def child_config(model: str, *, runs: int, warmup: int, threads: int, inputs: dict, backend: str | None,
                 progress: bool, timeout_s: float, load: dict | None = None) -> dict[str, Any]:
    cfg = {"model": model, "runs": runs, "warmup": warmup, "threads": threads, "input": inputs,
           "backend": backend, "progress": progress, "sample_interval_ms": 1.0, "runs_sample_interval_ms": 20.0,
           "timeout_s": timeout_s}
    if load:
        cfg["load"] = load
    if os.environ.get(TEST_HOOK_ENV):
        cfg[child.TEST_HOOK_HANG] = os.environ[TEST_HOOK_ENV]
    return cfg


DELEGATE_HINT = ("give a library the loader finds (e.g. libedgetpu.so.1 with the Edge TPU runtime installed) "
                 "or its path, and check --delegate-option")


def check_load(delegate: str | None = None, delegate_options: list[str] | dict | None = None,
               signature: str | None = None) -> dict | None:
    """The child's ``load`` settings from --delegate, --delegate-option KEY=VALUE and --signature; None
    when none is given. UsageError for an option without '=' or options without a delegate.

    Example: ``check_load("libedgetpu.so.1", ["device=usb"])`` -> ``{"delegate": ..., "delegate_options": {"device": "usb"}}``
    """
    if isinstance(delegate_options, dict):
        opts = {str(k): str(v) for k, v in delegate_options.items()}
    else:
        opts = {}
        for item in delegate_options or []:
            key, sep, value = str(item).partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--delegate-option {item!r}: write KEY=VALUE, e.g. --delegate-option device=usb")
            opts[key.strip()] = value
    if opts and not delegate:
        raise UsageError("--delegate-option needs --delegate LIBRARY (e.g. --delegate libedgetpu.so.1)")
    load = {"delegate": delegate, "delegate_options": opts or None, "signature": signature}
    load = {k: v for k, v in load.items() if v}
    return load or None


def child_timeout(timeout_s: float) -> float:
    """The parent's limit for a child process: the child stops itself at ``timeout_s``, this is the backstop."""
    return timeout_s + GRACE_S


def timeout_error(where: str, what: str, timeout_s: float) -> ProfileTimeout:
    prefix = f"{where}: " if where else ""
    return ProfileTimeout(f"{prefix}{what} did not finish within {timeout_s:g} s and was killed; "
                          "pass a larger --timeout if it needs longer")


def _device_json(text: str, where: str) -> Any:
    """One JSON line from the child (a device may send anything: a one-line RemoteError when it is not JSON)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # deep nesting ("[[[[...") exhausts the parser's recursion
        raise RemoteError(f"{where}: the profiler child sent a line that is not JSON") from None


def parse_child(res: ProcessResult, model: str, where: str = "", *, what: str = "the profile",
                timeout_s: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
    """The child's result dict, or the one-line error its failure deserves."""
    prefix = f"{where}: " if where else ""
    if res.timed_out:
        raise timeout_error(where, f"{model}: {what}", timeout_s)
    lines = res.stdout.splitlines()
    source = where or "the profiler child"
    rusage = next((_device_json(ln[len(child.RUSAGE_TAG):], source) for ln in lines
                   if ln.startswith(child.RUSAGE_TAG)), {})
    check_fields(rusage, {"ru_maxrss_mb": "num?", "signal": "count?"}, source, "rusage", RemoteError)
    for line in reversed(lines):
        if line.startswith(child.RESULT_TAG):
            raw = check_device_result(_device_json(line[len(child.RESULT_TAG):], source), source)
            if rusage.get("ru_maxrss_mb") is not None and "memory" in raw:
                raw["memory"]["os_ru_maxrss_mb"] = rusage["ru_maxrss_mb"]  # wait4 of the measuring process
            break
    else:
        signum = rusage.get("signal") or (-res.returncode if res.returncode < 0 else None)
        if signum:
            sig = signal.Signals(signum).name if signum in signal.Signals._value2member_map_ else f"signal {signum}"
            raise ModelLoadError(f"{prefix}{model}: the measuring process died with {sig} while loading or running "
                                 "the model; the file is corrupt or hostile, or the device ran out of memory")
        last = (res.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise EdgekitError(f"{prefix}the profiler child exited with code {res.returncode} and no result: {last}")
    err = raw.get("error")
    if not err:
        return raw
    kind, msg = err["kind"], err["message"]
    if kind == "timeout":
        raise timeout_error(where, f"{model}: {what}", timeout_s)
    if kind == "custom_op":
        raise ModelLoadError(f"{prefix}{model}: {msg}; the interpreter has no kernel for it "
                             "(convert without the custom op, or profile where it is registered)")
    if kind == "load":
        raise ModelLoadError(f"{prefix}{model}: {msg}")
    if kind == "delegate":
        raise ModelLoadError(f"{prefix}{model}: the external delegate could not be loaded: {msg}; "
                             f"{DELEGATE_HINT}")
    if kind == "signature":
        raise UsageError(f"{prefix}{model}: {msg}; pick one with --signature NAME")
    if kind == "missing_dependency":
        raise MissingDependencyError(f"{prefix}{msg}")
    if kind == "input":
        raise UsageError(f"{prefix}{msg}")
    raise EdgekitError(f"{prefix}profiler child failed: {msg}")


def make_row(raw: dict[str, Any]) -> dict[str, Any]:
    """One result row from the child's raw output."""
    samples = raw["timing"].pop("samples_ms")
    mem = dict(raw["memory"])
    mem["peak_mb"] = max(v for v in (mem.get("peak_rss_sampled_mb"), mem.get("ru_maxrss_mb")) if v is not None)
    summary = latency_stats.summarize(samples)
    return {
        "threads": raw["threads"],
        "interpreter": raw["interpreter"],
        "inputs": raw.get("inputs"),
        "timing": raw["timing"],
        "latency_ms": summary,
        "throughput_per_s": summary["throughput_per_s"],
        "memory": mem,
        "samples_ms": samples,
        "block_medians_ms": [round(v, 6) for v in latency_stats.block_medians(samples)],
        "machine_after": raw.get("machine_after"),
        "per_op": raw.get("per_op"),
    }


def document(model: dict, device: dict, machine: dict, settings: dict, rows: list[dict]) -> dict[str, Any]:
    """Assemble the "edgekit.profile/1" document."""
    return {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "edgekit": __version__,
        "model": model,
        "device": device,
        "machine": machine,
        "settings": settings,
        "rows": rows,
        "budget": None,
        "method": METHOD,
    }


def parse_threads(threads: int | str | Iterable[int] | None) -> list[int]:
    """``"1,2,4"`` or ``[1, 2, 4]`` or ``4`` -> [1, 2, 4]; None -> [1]."""
    if threads is None:
        return [1]
    if isinstance(threads, int):
        items: list = [threads]
    elif isinstance(threads, str):
        items = [t.strip() for t in threads.split(",") if t.strip()]
    else:
        items = list(threads)
    try:
        out = [int(t) for t in items]
    except ValueError:
        raise UsageError(f"--threads {threads!r}: expected whole numbers like 1,2,4") from None
    if not out or min(out) < 1:
        raise UsageError(f"--threads {threads!r}: each thread count must be at least 1")
    return list(dict.fromkeys(out))


def profile_model(
    model: str | Path,
    *,
    runs: int = 200,
    warmup: int = 20,
    threads: int | str | Iterable[int] | None = None,
    input: str | Path | Iterable[str | Path] | None = None,
    backend: str | None = None,
    on_progress: ProgressFn | None = None,
    python: str | None = None,
    timeout_s: float | None = None,
    load: dict | None = None,
) -> dict[str, Any]:
    """Profile ``model`` on this machine: one fresh child per thread count (default 1 thread).

    ``input``: ``--input`` values (feeds.py); ``python`` runs the child (default: this one);
    ``timeout_s`` limits each child (default 600 s); ``load``: an external delegate and a signature
    (``check_load``).
    """
    path = check_model(model)
    thread_list = parse_threads(threads)
    plan = plan_inputs(path, input)
    check_counts(runs, warmup)
    limit = check_timeout(timeout_s)
    rows, machine = [], {}
    for n in thread_list:
        cfg = child_config(str(path.resolve()), runs=runs, warmup=warmup, threads=n, inputs=plan.spec,
                           backend=backend, progress=on_progress is not None, timeout_s=limit, load=load)
        res = run_process([python or sys.executable, str(CHILD_SCRIPT), json.dumps(cfg)],
                          label=plural(n, "thread"), on_progress=on_progress, timeout_s=child_timeout(limit))
        raw = parse_child(res, str(path), what=f"the run with {plural(n, 'thread')}", timeout_s=limit)
        machine = machine or raw.get("machine") or {}
        rows.append(make_row(raw))
    settings = {"runs": runs, "warmup": warmup, "threads": thread_list, "input": plan.settings,
                "timeout_s": limit, **({"load": load} if load else {})}
    return document(model_info(path), {"kind": "local", "name": machine.get("hostname")}, machine, settings, rows)


def output_path(path: str | Path, label: str | None) -> Path:
    """``out.json`` for one result; ``out-pi_raspberrypi.json`` per host when there are several."""
    p = Path(path)
    if not label:
        return p
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in label)
    return p.with_name(f"{p.stem}-{safe}{p.suffix}")
