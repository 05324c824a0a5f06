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
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import __version__
from ..errors import EdgekitError, MissingDependencyError, ModelLoadError, UsageError
from ..flatbuf import is_tflite
from ..fsutil import read_bytes, sha256_file
from . import child, stats
from .render import plural
from .schema import METHOD, SCHEMA

# on_progress(label, phase, done, total): the CLI draws a bar from it.
ProgressFn = Callable[[str, str, int, int], None]
CHILD_SCRIPT = Path(child.__file__)


def check_tflite(path: str | Path) -> Path:
    """The path, if it is a readable TensorFlow Lite flatbuffer ("TFL3" at bytes 4..8)."""
    p = Path(path)
    if not is_tflite(read_bytes(p, ModelLoadError, "model file", head=8)):
        raise ModelLoadError(
            f"{p}: not a TensorFlow Lite model (no 'TFL3' identifier at bytes 4..8); convert it with edgekit convert"
        )
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


def input_spec(model: Path, source: str | Path | None) -> dict[str, Any]:
    """What the child feeds the model: seeded random data (in the manifest's calibration range
    when there is one, so float models see realistic values) or a .npy / .npz file."""
    if source not in (None, "random"):
        p = Path(source)
        if not p.is_file():
            raise UsageError(f"--input {p}: no such file; pass a .npy/.npz file or 'random'")
        return {"kind": "file", "path": str(p.resolve())}
    ranges = {}
    m = _manifest(model)
    for spec in m.inputs if m else []:
        st = m.input_stats(spec.name)
        if st is not None:
            ranges[spec.name] = [float(min(st.min)), float(max(st.max))]
    return {"kind": "random", "seed": 0, "ranges": ranges}


def check_counts(runs: int, warmup: int) -> None:
    """UsageError for run counts the child cannot use (before anything is started or copied)."""
    if runs < 1:
        raise UsageError(f"--runs must be at least 1, got {runs}")
    if warmup < 0:
        raise UsageError(f"--warmup cannot be negative, got {warmup}")


def child_config(model: str, *, runs: int, warmup: int, threads: int, inputs: dict, backend: str | None,
                 progress: bool) -> dict[str, Any]:
    return {"model": model, "runs": runs, "warmup": warmup, "threads": threads, "input": inputs,
            "backend": backend, "progress": progress, "sample_interval_ms": 1.0, "runs_sample_interval_ms": 20.0}


@dataclass
class ProcessResult:
    """What a finished child left behind: stdout, stderr (without progress lines), exit code."""

    stdout: str
    stderr: str
    returncode: int


def run_process(cmd: list[str], *, stdin: bytes | None = None, label: str = "",
                on_progress: ProgressFn | None = None) -> ProcessResult:
    """Run ``cmd``, forwarding the child's progress lines as they come."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err_lines: list[str] = []

    def pump_stderr():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            if line.startswith(child.PROGRESS_TAG):
                phase, done, total = line[len(child.PROGRESS_TAG):].split()
                if on_progress:
                    on_progress(label, phase, int(done), int(total))
            else:
                err_lines.append(line)

    def feed_stdin():
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except (BrokenPipeError, OSError):  # the child died early; its exit code tells why
            pass

    threads = [threading.Thread(target=pump_stderr, daemon=True)]
    if stdin is not None:
        threads.append(threading.Thread(target=feed_stdin, daemon=True))
    for t in threads:
        t.start()
    out = proc.stdout.read().decode("utf-8", "replace")
    for t in threads:
        t.join()
    proc.wait()
    return ProcessResult(out, "".join(err_lines), proc.returncode)


def parse_child(res: ProcessResult, model: str, where: str = "") -> dict[str, Any]:
    """The child's result dict, or the one-line error its failure deserves."""
    prefix = f"{where}: " if where else ""
    lines = res.stdout.splitlines()
    rusage = next((json.loads(ln[len(child.RUSAGE_TAG):]) for ln in lines if ln.startswith(child.RUSAGE_TAG)), {})
    for line in reversed(lines):
        if line.startswith(child.RESULT_TAG):
            raw = json.loads(line[len(child.RESULT_TAG):])
            if rusage.get("ru_maxrss_mb") is not None and "memory" in raw:
                raw["memory"]["os_ru_maxrss_mb"] = rusage["ru_maxrss_mb"]  # wait4 of the measuring process
            break
    else:
        signum = rusage.get("signal") or (-res.returncode if res.returncode < 0 else None)
        if signum:
            sig = signal.Signals(signum).name
            raise ModelLoadError(f"{prefix}{model}: the measuring process died with {sig} while loading or running "
                                 "the model; the file is corrupt or hostile, or the device ran out of memory")
        last = (res.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise EdgekitError(f"{prefix}the profiler child exited with code {res.returncode} and no result: {last}")
    err = raw.get("error")
    if not err:
        return raw
    kind, msg = err["kind"], err["message"]
    if kind == "custom_op":
        raise ModelLoadError(f"{prefix}{model}: {msg}; the interpreter has no kernel for it "
                             "(convert without the custom op, or profile where it is registered)")
    if kind == "load":
        raise ModelLoadError(f"{prefix}{model}: {msg}")
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
    summary = stats.summarize(samples)
    return {
        "threads": raw["threads"],
        "interpreter": raw["interpreter"],
        "inputs": raw.get("inputs"),
        "timing": raw["timing"],
        "latency_ms": summary,
        "throughput_per_s": summary["throughput_per_s"],
        "memory": mem,
        "samples_ms": samples,
        "block_medians_ms": [round(v, 6) for v in stats.block_medians(samples)],
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
    input: str | Path | None = None,
    backend: str | None = None,
    on_progress: ProgressFn | None = None,
    python: str | None = None,
) -> dict[str, Any]:
    """Profile ``model`` on this machine: one fresh child per thread count (default 1 thread).

    ``python`` is the interpreter that runs the child (default: this one).
    """
    path = check_tflite(model)
    thread_list = parse_threads(threads)
    inputs = input_spec(path, input)
    check_counts(runs, warmup)
    rows, machine = [], {}
    for n in thread_list:
        cfg = child_config(str(path.resolve()), runs=runs, warmup=warmup, threads=n, inputs=inputs,
                           backend=backend, progress=on_progress is not None)
        res = run_process([python or sys.executable, str(CHILD_SCRIPT), json.dumps(cfg)],
                          label=plural(n, "thread"), on_progress=on_progress)
        raw = parse_child(res, str(path))
        machine = machine or raw["machine"]
        rows.append(make_row(raw))
    settings = {"runs": runs, "warmup": warmup, "threads": thread_list,
                "input": "random" if inputs["kind"] == "random" else inputs["path"]}
    return document(model_info(path), {"kind": "local", "name": machine.get("hostname")}, machine, settings, rows)


def output_path(path: str | Path, label: str | None) -> Path:
    """``out.json`` for one result; ``out-pi_raspberrypi.json`` per host when there are several."""
    p = Path(path)
    if not label:
        return p
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in label)
    return p.with_name(f"{p.stem}-{safe}{p.suffix}")
