"""`edgekit optimize` on models where an int8 file is slower than fp32 on this CPU; prints figures, asserts nothing.

--model planted: the digits CNN with a planted quantization-sensitive layer
(edgekit.optimize.demo) where plain int8 loses about 3 points, all candidates, and a size
budget of half the float32 weights (--max-size-kb).
--model digits: the digits CNN (edgekit.digits, trained here, labelled eval data) with
fp32, dynamic, int8 and int16x8 (int16 activations, int8 weights: XNNPACK does not
accelerate it). --model mobilenetv2 (the default):
MobileNetV2 (Keras applications, weights=None: random weights, since nothing can be
downloaded here) at 224x224. With random weights accuracy means nothing, so the eval data
has no labels and the accuracy drop is disagreement with the source model's top-1 on
random crops of scikit-learn's two sample photos. The search runs with an accuracy
budget only; the script prints the fp32 and int8 latencies (the per-candidate profile and
the interleaved head-to-head) and which file optimize picked.

Random weights make MobileNetV2 predict nearly the same class for every crop, so agreement
is close to 1 for every recipe: the accuracy budget is met by all, and the run shows the
speed rule alone. The files are kept in the work folder: a rerun only measures again.

Usage:
    python bench/bench_optimize.py                     # work folder /tmp/edgekit-bench-optimize
    python bench/bench_optimize.py --model digits
    python bench/bench_optimize.py --max-drop 20 --size 160 --runs 100
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def build_digits(work: Path, planted: bool = False) -> tuple[Path, Path, Path]:
    from edgekit.digits import load_split, train_cnn
    from edgekit.optimize.demo import build_planted

    name = "planted" if planted else "digits"
    src, calib, evald = work / f"{name}.keras", work / f"{name}-calib.npz", work / f"{name}-eval.npz"
    if not src.exists():
        split = load_split(seed=0)
        (build_planted(split) if planted else train_cnn(split, epochs=8)).save(src)
        np.savez(calib, x=split.x_calib)
        np.savez(evald, x=split.x_test, y=split.y_test)
    return src, calib, evald


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
    if not evald.exists():  # written once: the journal keys on the files' hashes
        np.savez(calib, x=crops(n_calib))
        np.savez(evald, x=crops(n_eval))  # no y: the drop is disagreement with the source
    return src, calib, evald


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("mobilenetv2", "digits", "planted"), default="mobilenetv2")
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgekit-bench-optimize"))
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--max-drop", type=float, default=1.0, help="accuracy budget in points")
    ap.add_argument("--max-size-kb", type=float, default=None, help="size budget (planted: half the fp32 weights)")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--calib", type=int, default=100)
    ap.add_argument("--eval", type=int, default=200)
    ap.add_argument("--candidates", default=None, help="default: fp32,dynamic,int8 (+int16x8 for digits)")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    args.work.mkdir(parents=True, exist_ok=True)
    float_top_k = 0
    if args.model == "planted":
        src, calib, evald = build_digits(args.work, planted=True)
        float_top_k = 3
        if args.max_size_kb is None:
            from edgekit.conversion.tf import captured, import_keras

            with captured():
                params = import_keras().models.load_model(src).count_params()
            args.max_size_kb = round(0.5 * 4 * params / 1024, 1)
    elif args.model == "digits":
        src, calib, evald = build_digits(args.work)
        args.candidates = args.candidates or "fp32,dynamic,int8,int16x8"
    else:
        src, calib, evald = build(args.work, args.size, args.calib, args.eval)
        args.candidates = args.candidates or "fp32,dynamic,int8"

    from edgekit.optimize import Budgets, LatencySettings, optimize
    from edgekit.optimize.pareto import speed
    from edgekit.optimize.render import fmt_points, table

    t0 = time.perf_counter()
    res = optimize(src, args.work / f"{src.stem}-picked.tflite", calibration=calib, eval_data=evald,
                   budgets=Budgets(max_drop_points=args.max_drop, max_size_kb=args.max_size_kb),
                   candidates=args.candidates.split(",") if args.candidates else None,
                   float_top_k=float_top_k, latency=LatencySettings(runs=args.runs), force=True)
    sel = res.selection
    print(f"edgekit optimize {src.name} -c {calib.name} -e {evald.name} --max-accuracy-drop {args.max_drop}"
          + (f" --max-size-kb {args.max_size_kb}" if args.max_size_kb else "")
          + (f" --candidates {args.candidates}" if args.candidates else "")
          + f" --float-top-k {float_top_k} --runs {args.runs}   ({time.perf_counter() - t0:.0f} s)")
    print(table(res.rows, sel, res.budgets))
    rows = [r for r in res.rows if not r.get("error")]
    fp32 = next(r for r in rows if r["name"] == "fp32")
    for r in rows:
        rounds = r.get("h2h_rounds_p50")
        print(f"{r['name']:44} p50 {r['latency']['p50']:8.3f} ms  x fp32 {speed(r) / speed(fp32):5.2f}  "
              f"size x fp32 {r['size_bytes'] / fp32['size_bytes']:.2f}  drop {fmt_points(r['drop_points'])} ({r['drop_basis']})"
              + (f"  head-to-head rounds {', '.join(f'{v:.3f}' for v in rounds)}" if rounds else ""))
    if res.debug:
        print("debugger ranking (rmse/scale): " + ", ".join(
            f"{e['layer'] or e['tensor']} {e['rmse_per_scale']:.3g}" for e in res.debug["layers"][:4]))
    print(f"picked: {sel.pick['name'] if sel.pick else None}")


if __name__ == "__main__":
    main()
