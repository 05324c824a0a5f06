"""Fidelity of `edgekit profile`, measured in one run; prints ratios, asserts nothing.

1. Latency: edgekit's p50 over the median of an independent minimal timing loop
   (a separate fresh process: Interpreter, set_tensor once, time invoke()), both
   on the same model and thread count, interleaved E M E M E M so drift hits both.
   Target 0.95..1.05. ai-edge-litert's own tools/benchmark_litert_model.py
   (CompiledModel API, medians rounded to 0.01 ms) is printed alongside.
2. Memory: edgekit's sampled peak RSS over the measuring process's ru_maxrss as
   the OS reports it (wait4). Target within 10%.
3. Run to run: spread (max - min) / median of p50 across the three edgekit
   profiles. Target <= 5% on an idle machine: the machine's busy share during
   each pair is printed, and --wait-idle S waits for a quiet moment first (on a
   shared 2-vCPU VM a neighbour on the sibling core doubles invoke() time).

Usage:
    python bench/bench_profile.py                      # builds MobileNetV2 (random weights) 160x160
    python bench/bench_profile.py --model m.tflite --threads 2 --runs 500
    python bench/bench_profile.py --pairs 5 --wait-idle 120
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgekit.profile.profiler import profile_model

BUILD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf, keras
m = keras.applications.MobileNetV2(weights=None, input_shape=(160, 160, 3))
open(sys.argv[1], "wb").write(tf.lite.TFLiteConverter.from_keras_model(m).convert())
"""

MINIMAL_LOOP = """
import json, statistics, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter
path, threads, runs, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
it = Interpreter(model_path=path, num_threads=threads)
it.allocate_tensors()
for d in it.get_input_details():
    it.set_tensor(d["index"], np.random.default_rng(0).uniform(0, 1, d["shape"]).astype(d["dtype"]))
for _ in range(warmup):
    it.invoke()
times = []
for _ in range(runs):
    t0 = time.perf_counter()
    it.invoke()
    times.append(time.perf_counter() - t0)
print(json.dumps({"median_ms": statistics.median(times) * 1e3}))
"""


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as fh:
        vals = [int(v) for v in fh.readline().split()[1:]]
    idle = vals[3] + vals[4]  # idle + iowait
    return sum(vals) - idle, sum(vals)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def wait_idle(limit_s: float) -> float:
    """Wait (up to limit_s) for a 1 s window in which the machine is at least 90% idle; returns its busy share."""
    deadline = time.monotonic() + limit_s
    while True:
        before = cpu_times()
        time.sleep(1.0)
        share = busy_share(before, cpu_times())
        if share <= 0.10 or time.monotonic() >= deadline:
            return share


def relative_spread(values: list[float]) -> float:
    """(max - min) / median."""
    return (max(values) - min(values)) / statistics.median(values)


def minimal_loop(model: Path, threads: int, runs: int, warmup: int) -> float:
    out = subprocess.run([sys.executable, "-c", MINIMAL_LOOP, str(model), str(threads), str(runs), str(warmup)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["median_ms"]


def litert_tool(model: Path, threads: int, runs: int, warmup: int, tmp: Path) -> float | None:
    result = tmp / "litert.json"
    r = subprocess.run([sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", "--model", str(model),
                        "--num_runs", str(runs), "--warmup_runs", str(warmup), "--num_threads", str(threads),
                        "--result_json", str(result)], capture_output=True, text=True)
    return json.loads(result.read_text())["latency"]["median_ms"] if r.returncode == 0 and result.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--pairs", type=int, default=3, help="edgekit/minimal-loop pairs (at least 3)")
    ap.add_argument("--wait-idle", type=float, default=0.0, metavar="S",
                    help="before each pair, wait up to S seconds for a 1 s window with the machine 90%% idle")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    model = args.model
    if model is None:
        model = tmp / "mobilenet_v2_160.tflite"
        subprocess.run([sys.executable, "-c", BUILD, str(model)], check=True, capture_output=True)
    print(f"model {model.name} ({model.stat().st_size / 2**20:.1f} MB), {args.threads} thread(s), "
          f"{args.runs} runs after {args.warmup} warm-up; load average before {os.getloadavg()[0]:.2f}")

    p50s, minimal, peaks = [], [], []
    for i in range(max(3, args.pairs)):
        idle_before = wait_idle(args.wait_idle) if args.wait_idle else None
        t0 = cpu_times()
        doc = profile_model(model, runs=args.runs, warmup=args.warmup, threads=args.threads)
        row = doc["rows"][0]
        p50s.append(row["latency_ms"]["p50"])
        peaks.append((row["memory"]["peak_rss_sampled_mb"], row["memory"]["os_ru_maxrss_mb"]))
        minimal.append(minimal_loop(model, args.threads, args.runs, args.warmup))
        busy = busy_share(t0, cpu_times())
        waited = "" if idle_before is None else f", machine {idle_before * 100:.0f}% busy just before"
        print(f"  run {i + 1}: edgekit p50 {p50s[-1]:.4f} ms | minimal loop median {minimal[-1]:.4f} ms | "
              f"edgekit sampled peak {peaks[-1][0]:.1f} MB, child ru_maxrss (wait4) {peaks[-1][1]:.1f} MB | "
              f"machine {busy * 100:.0f}% busy during the pair (this run alone is about "
              f"{args.threads / (os.cpu_count() or 1) * 100:.0f}%){waited}")
    tool = litert_tool(model, args.threads, args.runs, args.warmup, tmp)

    pair_ratios = [e / m for e, m in zip(p50s, minimal)]
    ratio = statistics.median(pair_ratios)
    mem = [sampled / rss for sampled, rss in peaks]
    spread = relative_spread(p50s[:3])
    print(f"latency  edgekit p50 / minimal-loop median = {ratio:.3f}  (median of {len(pair_ratios)} back-to-back "
          f"pairs; target 0.95..1.05; per pair {', '.join(f'{r:.3f}' for r in pair_ratios)})")
    if tool is not None:
        print(f"         edgekit p50 / benchmark_litert_model median = {statistics.median(p50s) / tool:.3f} "
              f"(its median {tool:.2f} ms, rounded to 0.01 ms, CompiledModel API)")
    print(f"memory   edgekit sampled peak / child ru_maxrss = {min(mem):.3f}..{max(mem):.3f}  (target 0.90..1.10)")
    floor = relative_spread(minimal[:3])
    print(f"run2run  p50 spread (max-min)/median across 3 consecutive profiles = {spread * 100:.2f}%  (target <= 5%; "
          f"the minimal loop's own spread over the same minutes, the machine's noise floor: {floor * 100:.2f}%; "
          f"load average after {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
