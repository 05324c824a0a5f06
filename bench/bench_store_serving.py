"""What serving from a store costs per call, against a plain EdgeModel, measured in one run:

- plain:    EdgeModel.load(model).predict(x)
- store:    serve(store).predict(x)   (one stat of index.json before every call)
- canary:   the same with a candidate staged (its shadow runs on a background thread)

Calls alternate between the ways in blocks, rounds repeated; medians of per-call time.

Run:  .venv/bin/python bench/bench_store_serving.py [--rounds 15] [--calls 300] [--models DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--models", default=str(Path(tempfile.gettempdir()) / "edgekit-bench-store-models"))
    a = ap.parse_args()
    # the models are built by the power-loss bench, in a child (TensorFlow stays out of this process)
    subprocess.run([sys.executable, str(Path(__file__).with_name("bench_store_powerloss.py")), "--build-only",
                    "--models", a.models], check=True)
    from edgekit.runtime import EdgeModel
    from edgekit.store import ModelStore, serve

    fp32, _, int8, _ = (Path(a.models) / f"digits-{r}.tflite" for r in ("fp32", "dynamic", "int8", "fp16"))
    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-serving-"))
    plain_store, canary_store = ModelStore(work / "a", create=True), ModelStore(work / "b", create=True)
    plain_store.deploy(int8)
    canary_store.deploy(int8)
    canary_store.deploy(fp32, canary={"calls": 10**9})  # never ends during the run
    from edgekit.digits import load_split

    x = load_split(seed=0).x_test[:1]  # a real digit: a blank input would be flagged OOD and logged on every call
    ways = {"plain": EdgeModel.load(int8), "store": serve(plain_store.root, reference_rate=0),
            "canary": serve(canary_store.root, reference_rate=0)}
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(a.rounds):
        for name, model in ways.items():
            t0 = time.perf_counter()
            for _ in range(a.calls):
                model.predict(x)
            times[name].append((time.perf_counter() - t0) / a.calls * 1e6)
    med = {k: statistics.median(v) for k, v in times.items()}
    t0 = time.perf_counter()
    for _ in range(10000):
        plain_store.index_stamp()
    stat_us = (time.perf_counter() - t0) / 10000 * 1e6
    for name, us in med.items():
        print(f"{name:7} {us:8.1f} us/call  ratio to plain {us / med['plain']:.3f}")
    figs = ways["canary"].canary_figures(wait=True)
    print(f"index check (one stat): {stat_us:.2f} us; canary: {figs['compared']} of {a.rounds * a.calls} calls "
          f"compared, {figs['skipped']} skipped (shadow queue full)")
    for m in ways.values():
        m.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
