"""What a cold load costs on the emulated Raspberry Pi: EdgeModel.load cold, warm and the bare interpreter.

Issue 20 item 2. On the emulated device (scripts/pi-sim, flavour aarch64: Debian 13 trixie arm64, Python 3.13,
ai-edge-litert, edgekit installed from this checkout) and, for comparison, on this host, in one run:
- bare: ``ai_edge_litert.interpreter.Interpreter(model_content=..., num_threads=1)``, ``allocate_tensors``, one
  invoke on zeros (what bench/bench_runtime.py calls "bare load": what an app does before serving);
- warm: ``EdgeModel.load(path, num_threads=1)`` with the probe verdict and structure check already cached in
  ``$EDGEKIT_CACHE_DIR`` (every load after the first of a model file on a machine);
- cold: the same with ``$EDGEKIT_CACHE_DIR`` a new empty folder, so the load walks the flatbuffer's structure
  and runs its crash-proof probe subprocess (the first load of a model file on a machine: a fresh device).
Each is the median of ``--runs`` fresh processes (interleaved bare, warm, cold). "ms" is timed inside the
process with time.perf_counter around the load only; numpy, ai_edge_litert.interpreter and, for EdgeModel,
edgekit.runtime are imported before the clock starts, so the column is the load and nothing else. "wall" is
the whole process as its parent sees it: Python start, imports, the load, exit (what an app pays at boot).

Models (``build_models`` of bench/bench_runtime.py, built or adopted into ``--workdir`` and reused): the
digits CNN as int8 and the published mediapipe face detector, each with its manifest beside it (EdgeModel
finds ``NAME.manifest.json`` next to ``NAME.tflite``); both copied to the device over SSH.

Caveat: the device is qemu user-mode emulation on an x86 host, not a Raspberry Pi. Every guest instruction
is translated, so a Python start or an import costs many times what it costs on a Pi 4/5: absolute numbers
here say nothing about a Pi's speed; the ratios (cold/bare, warm/bare, in-process against wall) are what
to read, and even they lean towards Python-heavy work (the probe's Python start) looking worse than on a Pi.

The device: the running pi-sim aarch64 device is used (``scripts/pi-sim start`` reuses it and reinstalls
edgekit from this checkout when it changed); one this script had to start is stopped at the end
(``--keep-device`` leaves it running). The first start builds its root (minutes, cached after).

Run:  /work/cpu-slot --exclusive .venv/bin/python bench/bench_load_device.py [--workdir DIR] [--runs 5]
      [--profile]   (also one cold load on the device under cProfile: where its time goes)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_runtime import ROOT, build_models  # also puts ROOT and ROOT/tests on sys.path

sys.path.insert(0, str(ROOT / "tests" / "pisim"))
from pisim_device import PiDevice, put_model  # noqa: E402

PISIM = ROOT / "scripts" / "pi-sim"
MODELS = ("digits int8", "face_detection")
REMOTE_DIR = "/tmp/edgekit-bench-load"

# One fresh process: one load, timed inside; prints JSON. argv: mode (bare|edgemodel|profile) model_path.
CHILD = r"""
import json, sys, time
t_imp = time.perf_counter()
import numpy as np
from ai_edge_litert.interpreter import Interpreter
mode, path = sys.argv[1], sys.argv[2]
if mode == "bare":
    data = open(path, "rb").read()
    imported = time.perf_counter()
    t0 = time.perf_counter()
    interp = Interpreter(model_content=data, num_threads=1)
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    interp.invoke()
    dt = time.perf_counter() - t0
else:
    from edgekit.runtime import EdgeModel
    imported = time.perf_counter()
    if mode == "profile":
        import cProfile, io, pstats
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
    else:
        t0 = time.perf_counter()
    model = EdgeModel.load(path, num_threads=1)
    dt = time.perf_counter() - t0
    if mode == "profile":
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(25)
        print(out.getvalue())
    model.close()
print(json.dumps({"load_s": dt, "import_s": imported - t_imp}))
"""

# Runs where the models are (the device or this host): fresh processes for each kind of load, interleaved.
# argv: JSON {"models": {name: path}, "runs": N, "profile": bool}; prints one JSON document last.
DRIVER = r"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time
CHILD = %r
cfg = json.loads(sys.argv[1])
base = tempfile.mkdtemp(prefix="edgekit-bench-load-")

def one(mode, path, cache):
    env = dict(os.environ, EDGEKIT_CACHE_DIR=cache, TF_CPP_MIN_LOG_LEVEL="3")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD, mode, path], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{mode} {path}: exit {res.returncode}: {res.stderr[-2000:]}")
    got = json.loads(res.stdout.strip().splitlines()[-1])
    got["wall_s"] = wall
    return got, res.stdout

out = {}
try:
    for name, path in cfg["models"].items():
        warm_cache = os.path.join(base, name.replace(" ", "-") + "-warm")
        one("edgemodel", path, warm_cache)  # primes the warm cache (the first load on this machine)
        rows = {"bare": [], "warm": [], "cold": []}
        for i in range(cfg["runs"]):
            rows["bare"].append(one("bare", path, warm_cache)[0])
            rows["warm"].append(one("edgemodel", path, warm_cache)[0])
            rows["cold"].append(one("edgemodel", path, os.path.join(base, f"{name.replace(' ', '-')}-cold{i}"))[0])
        out[name] = {kind: {key: statistics.median(r[key] for r in rs) for key in ("load_s", "wall_s", "import_s")}
                     for kind, rs in rows.items()}
        if cfg.get("profile"):
            got, text = one("profile", path, os.path.join(base, name.replace(" ", "-") + "-profile"))
            out[name]["profile"] = text.strip().rsplit("\n", 1)[0]
finally:
    shutil.rmtree(base, ignore_errors=True)
print(json.dumps(out))
"""


def driver_code() -> str:
    return DRIVER % CHILD


def run_host(models: dict[str, Path], runs: int, profile: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    cfg = json.dumps({"models": {n: str(p) for n, p in models.items()}, "runs": runs, "profile": profile})
    res = subprocess.run([sys.executable, "-c", driver_code(), cfg], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise SystemExit(f"on this host: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def pisim_options(flavour: str) -> list[str]:
    """pi-sim's flavour names ("aarch64", "aarch64-bookworm") -> its options (as tests/pisim/conftest.py)."""
    arch, _, suite = flavour.partition("-")
    return ["--arch", arch] + (["--suite", suite] if suite else [])


def start_device(flavour: str) -> tuple[PiDevice, bool]:
    """(the device, whether this script started it): pi-sim's own start, as tests/pisim/conftest.py does."""
    opts = pisim_options(flavour)
    was_running = subprocess.run([sys.executable, str(PISIM), "status", *opts], capture_output=True).returncode == 0
    print(f"pi-sim {flavour}: {'running, reused' if was_running else 'starting (the first start builds for minutes)'}",
          flush=True)
    res = subprocess.run([sys.executable, str(PISIM), "start", *opts, "--checkout", str(ROOT)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"scripts/pi-sim start {' '.join(opts)} failed:\n{res.stderr[-3000:]}")
    lines = res.stdout.strip().splitlines()
    print(lines[0], flush=True)
    return PiDevice(flavour, shlex.split(lines[-1]), res.stdout + res.stderr), not was_running


def stop_device(flavour: str) -> None:
    subprocess.run([sys.executable, str(PISIM), "stop", *pisim_options(flavour)], capture_output=True, timeout=120)


def run_device(dev: PiDevice, models: dict[str, Path], runs: int, profile: bool) -> dict:
    remote = {name: put_model(dev, path, REMOTE_DIR) for name, path in models.items()}
    cfg = json.dumps({"models": remote, "runs": runs, "profile": profile})
    try:
        return dev.python_json(driver_code(), cfg, timeout=3600)
    finally:
        dev.run(f"rm -rf {REMOTE_DIR}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="keep the built models here and reuse them next time")
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per kind of load (median)")
    ap.add_argument("--flavour", default="aarch64", help="the pi-sim flavour (default aarch64: trixie)")
    ap.add_argument("--profile", action="store_true", help="also one cold load under cProfile on each side")
    ap.add_argument("--keep-device", action="store_true", help="leave a device this script started running")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        built = build_models(work, engines=False)
        models = {name: built[name][0] for name in MODELS}
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; medians of {args.runs} "
              "fresh processes each", flush=True)
        host = run_host(models, args.runs, args.profile)
        dev, started = start_device(args.flavour)
        try:
            device = run_device(dev, models, args.runs, args.profile)
        finally:
            if started and not args.keep_device:
                stop_device(args.flavour)
    print()
    print("ms: the load alone, timed inside the process; wall: the whole process (Python start, imports, load, exit)")
    print(f"{'model':15} {'where':14} {'bare ms':>8} {'warm ms':>8} {'cold ms':>8} {'warm/b':>6} {'cold/b':>6} "
          f"{'bare wall':>9} {'warm wall':>9} {'cold wall':>9} {'cold-warm wall':>14}")
    for name in MODELS:
        for where, got in ((f"{args.flavour} qemu", device), ("x86 host", host)):
            r = got[name]
            b, w, c = (r[k]["load_s"] * 1e3 for k in ("bare", "warm", "cold"))
            bw, ww, cw = (r[k]["wall_s"] * 1e3 for k in ("bare", "warm", "cold"))
            print(f"{name:15} {where:14} {b:8.1f} {w:8.1f} {c:8.1f} {w / b:6.2f} {c / b:6.2f} "
                  f"{bw:9.0f} {ww:9.0f} {cw:9.0f} {cw - ww:14.0f}")
    print()
    print("imports before the clock (median ms; numpy + ai_edge_litert, and edgekit.runtime for EdgeModel):")
    for name in MODELS:
        for where, got in ((f"{args.flavour} qemu", device), ("x86 host", host)):
            r = got[name]
            print(f"  {name:15} {where:14} bare {r['bare']['import_s'] * 1e3:7.0f}  "
                  f"EdgeModel {r['warm']['import_s'] * 1e3:7.0f}")
    if args.profile:
        for where, got in ((f"{args.flavour} qemu", device), ("x86 host", host)):
            for name in MODELS:
                print(f"\n---- one cold EdgeModel.load under cProfile, {name}, {where} ----")
                print(got[name]["profile"])
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end. qemu user-mode emulation on an x86 host is not a "
          "Raspberry Pi's speed: read the ratios, not the absolute numbers.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
