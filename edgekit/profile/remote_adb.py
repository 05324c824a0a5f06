"""Profile on an Android phone over adb with LiteRT's own C++ ``benchmark_model`` binary.

Pushes the model and the user's benchmark_model (built for the phone's ABI) to
/data/local/tmp/edgekit, runs it once per thread count and parses its text
output (benchmark_output.py) into the same "edgekit.profile/1" rows. The tool
reports mean, std, min and max rather than each run, so percentiles and the
histogram are missing for adb rows; its memory figure is its own approximate one.
Every adb call has the --timeout limit; benchmark_model is started as
``echo EDGEKIT-PID $$ >&2; exec benchmark_model ...`` so that a timeout or Ctrl-C
can also ``adb shell kill -9 PID`` it on the phone (killing the local adb client
alone may leave it running there).

Example:
    >>> doc = profile_adb("m.tflite", "R58M123ABC", "benchmark_model", threads="1,4", per_op=True)   # doctest: +SKIP
    >>> doc["rows"][0]["per_op"]["ops"][0]["type"]                                                   # doctest: +SKIP
    'CONV_2D'
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError, RemoteError, UsageError
from . import benchmark_output, child
from .processes import DEFAULT_TIMEOUT_S, ProgressFn, run_process
from .schema import ROW, check_fields
from .profiler import check_counts, check_model, check_timeout, document, model_info, parse_threads, timeout_error

DEVICE_DIR = "/data/local/tmp/edgekit"
_FACTS = {  # key -> shell expression; printed as key=value lines in one adb shell call
    "manufacturer": "getprop ro.product.manufacturer",
    "model": "getprop ro.product.model",
    "soc": "getprop ro.soc.model",
    "abi": "getprop ro.product.cpu.abi",
    "android": "getprop ro.build.version.release",
    "cpus": "cat /sys/devices/system/cpu/possible",
    "governor": "cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
    "temp": "cat /sys/class/thermal/thermal_zone0/temp",
}


class Adb:
    """``adb -s SERIAL ...`` with one-line errors."""

    def __init__(self, serial: str, timeout_s: float = DEFAULT_TIMEOUT_S):
        exe = shutil.which("adb")
        if exe is None:
            raise RemoteError("adb not found on PATH; install Android platform-tools (apt-get install adb) "
                              "to profile on a phone")
        self.exe, self.serial, self.timeout_s = exe, serial, timeout_s

    def kill_on_phone(self, pid: int) -> None:
        """on_kill for run_process: the phone's process, which outlives a killed local adb client."""
        import subprocess

        subprocess.run([self.exe, "-s", self.serial, "shell", f"kill -9 {int(pid)}"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=15)

    def run(self, *args: str, check: bool = True, what: str | None = None, **kw):
        res = run_process([self.exe, "-s", self.serial, *args], timeout_s=self.timeout_s,
                          on_kill=self.kill_on_phone, **kw)
        if res.timed_out:
            raise timeout_error(self.serial, what or f"adb {args[0]}", self.timeout_s)
        if check and res.returncode != 0:
            last = (res.stderr.strip().splitlines() or res.stdout.strip().splitlines() or ["no message"])[-1]
            raise RemoteError(f"{self.serial}: adb {args[0]} failed: {last.strip()}")
        return res

    def connect(self) -> None:
        res = self.run("get-state", check=False)
        if res.returncode != 0 or res.stdout.strip() != "device":
            last = (res.stderr.strip().splitlines() or [res.stdout.strip() or "not ready"])[-1]
            raise RemoteError(f"{self.serial}: adb cannot reach the phone ({last.strip()}); check `adb devices`")

    def push(self, local: Path, remote: str) -> None:
        self.run("push", str(local), remote)

    def shell(self, command: str, **kw):
        return self.run("shell", command, **kw)


def machine(adb: Adb) -> dict[str, Any]:
    script = "; ".join(f'echo "{k}=$({cmd} 2>/dev/null)"' for k, cmd in _FACTS.items())
    facts = dict(ln.split("=", 1) for ln in adb.shell(script).stdout.splitlines() if "=" in ln)
    cpus = re.fullmatch(r"(\d+)-(\d+)", facts.get("cpus", "").strip())
    temp = facts.get("temp", "").strip()
    name = " ".join(v for v in (facts.get("manufacturer"), facts.get("model")) if v) or adb.serial
    return {
        "hostname": adb.serial,
        "os": f"Android {facts.get('android') or '?'}",
        "arch": facts.get("abi") or None,
        "cpu_model": f"{name} ({facts['soc']})" if facts.get("soc") else name,
        "cores": int(cpus.group(2)) + 1 if cpus else None,
        "governor": facts.get("governor") or None,
        "temperature_c": {"thermal_zone0": int(temp) / 1000.0} if temp.lstrip("-").isdigit() else None,
        "throttling": None,
    }


def row_from_output(parsed: dict[str, Any], threads: int, binary: str) -> dict[str, Any]:
    """A result row from parsed benchmark_model output (missing figures stay None)."""
    runs = parsed["runs"]
    lat = {k: runs.get(k) for k in ("count", "min", "mean", "std", "p50", "p90", "p95", "p99", "max")}
    lat = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in lat.items()}
    lat["throughput_per_s"] = round(1000.0 / lat["mean"], 6) if lat.get("mean") else None
    mem = parsed["memory"]
    ops = parsed["ops"]
    return {
        "threads": parsed.get("threads") or threads,
        "interpreter": {"package": "benchmark_model", "version": None, "binary": binary},
        "timing": {"load_ms": None, "init_ms": parsed["init_ms"], "first_inference_ms": parsed["first_inference_ms"],
                   "warmup": (parsed["warmup"] or {}).get("count"), "runs": runs["count"]},
        "latency_ms": lat,
        "throughput_per_s": lat["throughput_per_s"],
        "memory": {"peak_mb": mem["peak_mb"], "init_mb": mem["init_mb"], "footprint_delta_mb": mem["delta_mb"],
                   "source": "benchmark_model's own approximate figure"},
        "samples_ms": [],
        "block_medians_ms": [],
        "per_op": {"available": bool(ops), "ops": ops, "source": "benchmark_model --enable_op_profiling",
                   "reason": None if ops else "run with --per-op to get per-op timings from benchmark_model"},
    }


def profile_adb(model: str | Path, serial: str, benchmark_binary: str | Path | None, *, runs: int = 200,
                warmup: int = 20, threads: Any = None, per_op: bool = False,
                on_progress: ProgressFn | None = None, timeout_s: float | None = None) -> dict[str, Any]:
    """Profile ``model`` on the phone ``serial`` with ``benchmark_binary``; one row per thread count.

    ``timeout_s`` limits each adb call (default 600 s)."""
    path = check_model(model, tflite_only=True)
    if benchmark_binary is None:
        raise UsageError("--adb needs --benchmark-binary PATH: LiteRT's benchmark_model built for the phone "
                         "(android_arm64 release asset or bazel build //tflite/tools/benchmark:benchmark_model)")
    binary = Path(benchmark_binary)
    if not binary.is_file():
        raise UsageError(f"--benchmark-binary {binary}: no such file")
    thread_list = parse_threads(threads)
    check_counts(runs, warmup)
    adb = Adb(serial, check_timeout(timeout_s))
    adb.connect()
    info = model_info(path)
    remote_model = f"{DEVICE_DIR}/{info['sha256'][:16]}.tflite"
    remote_bin = f"{DEVICE_DIR}/benchmark_model"
    adb.shell(f"mkdir -p {DEVICE_DIR}")
    adb.push(path, remote_model)
    adb.push(binary, remote_bin)
    adb.shell(f"chmod 755 {remote_bin}")
    rows = []
    for n in thread_list:
        label = f"{serial} {n}t"
        args = [remote_bin, f"--graph={remote_model}", f"--num_threads={n}", f"--num_runs={runs}",
                f"--warmup_runs={warmup}"] + (["--enable_op_profiling=true"] if per_op else [])
        if on_progress:
            on_progress(label, "runs", 0, 1)
        command = f"echo {child.PID_TAG}$$ >&2; exec " + " ".join(shlex.quote(a) for a in args)
        res = adb.shell(command, check=False, what=f"{path.name}: benchmark_model with {n} threads")
        text = res.stdout + res.stderr
        op = child.custom_op_name(text)
        if op:
            raise ModelLoadError(f"{serial}: {path.name}: unresolved custom op {op}; "
                                 "benchmark_model has no kernel for it")
        parsed = benchmark_output.parse(text)
        if parsed["runs"] is None:
            last = (text.strip().splitlines() or ["no output"])[-1].strip()
            raise RemoteError(f"{serial}: benchmark_model produced no timings (exit {res.returncode}): {last}")
        if on_progress:
            on_progress(label, "runs", 1, 1)
        row = row_from_output(parsed, n, binary.name)
        check_fields(row, ROW, serial, "benchmark_model's result", RemoteError)  # its text is the phone's
        rows.append(row)
    settings = {"runs": runs, "warmup": warmup, "threads": thread_list, "input": "random (benchmark_model)"}
    return document(info, {"kind": "adb", "name": serial}, machine(adb), settings, rows)
