"""`edgekit optimize` on a model where int8 is slower than fp32 on this CPU; prints the figures, asserts nothing.

MobileNetV2 (Keras applications, weights=None: random weights, since nothing can be
downloaded here) at 224x224. With random weights accuracy means nothing, so the eval data
has no labels and the accuracy drop is disagreement with the source model's top-1 on
random crops of scikit-learn's two sample photos. The search runs with an accuracy
budget only; the script prints the fp32 and int8 latencies (the per-candidate profile and
the interleaved head-to-head) and which file optimize picked.

Usage:
    python bench/bench_optimize.py                     # work folder /tmp/edgekit-bench-optimize
    python bench/bench_optimize.py --max-drop 20 --size 160 --runs 100
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def build(work: Path, size: int, n_calib: int, n_eval: int) -> tuple[Path, Path, Path]:
    from sklearn.datasets import load_sample_images

    from edgekit.conversion.tf import captured, import_keras

    keras = import_keras()
    keras.utils.set_random_seed(0)
    src = work / f"mobilenetv2-{size}.keras"
    if not src.exists():
        with captured():
            keras.applications.MobileNetV2(weights=None, input_shape=(size, size, 3)).save(src)
    rng = np.random.default_rng(0)
    photos = [np.asarray(p, np.float32) / 127.5 - 1.0 for p in load_sample_images().images]  # MobileNet's -1..1

    def crops(n):
        out = []
        for _ in range(n):
            p = photos[rng.integers(len(photos))]
            y, x = rng.integers(p.shape[0] - size), rng.integers(p.shape[1] - size)
            out.append(p[y : y + size, x : x + size])
        return np.stack(out)

    calib, evald = work / "calib.npz", work / "eval.npz"
    np.savez(calib, x=crops(n_calib))
    np.savez(evald, x=crops(n_eval))  # no y: the drop is disagreement with the source
    return src, calib, evald


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgekit-bench-optimize"))
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--max-drop", type=float, default=10.0, help="accuracy budget in points of disagreement")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--calib", type=int, default=100)
    ap.add_argument("--eval", type=int, default=200)
    ap.add_argument("--candidates", default="fp32,fp16,dynamic,int8,int8-float-io")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args.work.mkdir(parents=True, exist_ok=True)
    src, calib, evald = build(args.work, args.size, args.calib, args.eval)

    from edgekit.optimize import Budgets, LatencySettings, optimize
    from edgekit.optimize.render import table

    t0 = time.perf_counter()
    res = optimize(src, args.work / "picked.tflite", calibration=calib, eval_data=evald,
                   budgets=Budgets(max_drop_points=args.max_drop), candidates=args.candidates.split(","),
                   float_top_k=0, latency=LatencySettings(runs=args.runs), force=True)
    sel = res.selection
    print(f"edgekit optimize {src.name} -c calib.npz -e eval.npz --max-accuracy-drop {args.max_drop} "
          f"--candidates {args.candidates} --float-top-k 0 --runs {args.runs}   ({time.perf_counter() - t0:.0f} s)")
    print(table(res.rows, pick=sel.pick["name"] if sel.pick else None, front=sel.front, meeting=sel.meeting))
    rows = {r["name"]: r for r in res.rows}
    for name in ("fp32", "int8"):
        r = rows.get(name)
        if r and not r.get("error"):
            h2h = r.get("h2h_rounds_p50")
            print(f"{name:5} p50 {r['latency']['p50']:.2f} ms (profile), head-to-head rounds "
                  f"{', '.join(f'{v:.2f}' for v in h2h) if h2h else '-'}; size {r['size_bytes'] / 1024:.0f} KB; "
                  f"drop {r['drop_points']:.1f} points ({r['drop_basis']})")
    if "fp32" in rows and "int8" in rows:
        a, b = rows["int8"], rows["fp32"]
        ka = a.get("h2h_p50") or a["latency"]["p50"]
        kb = b.get("h2h_p50") or b["latency"]["p50"]
        print(f"int8 / fp32 p50 = {ka / kb:.2f}")
    print(f"picked: {sel.pick['name'] if sel.pick else None}")


if __name__ == "__main__":
    main()
