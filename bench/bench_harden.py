"""`edgekit harden` on the digits CNN, the full measurement (issue 18 acceptance), then `edgekit audit` of both
int8 files: the gain the hardening buys, seen by harden's own table and by the audit.

Trains the demo's digits CNN (edgekit.digits.train_cnn, 8 epochs, seed 0: the tests' fixture), writes the
scikit-learn digits split as train/eval/calib .npz, runs ``harden`` (10 epochs by default, PGD 7 steps, epsilon
0.2 = 20% of the 0..1 range, int8 files for both models), then audits both int8 files with their Keras sources.
Prints harden's table, the audit's PGD and Square Attack rows at the strongest epsilon, and the ratios.

Run:  .venv/bin/python bench/bench_harden.py [--epochs 10] [--seeds 0] [--workdir DIR]
Acceptance (issue 18): robust accuracy at the strongest epsilon up by >= 20 points at a clean cost <= 3 points.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def data(d: Path, seed: int) -> dict[str, Path]:
    from edgekit.conversion.tf import captured
    from edgekit.digits import load_split, train_cnn

    s = load_split(seed=0)
    np.savez(d / "train.npz", x=s.x_train, y=s.y_train)
    np.savez(d / "eval.npz", x=s.x_test, y=s.y_test, labels=np.array(s.labels))
    np.savez(d / "calib.npz", x=s.x_calib)
    with captured():
        train_cnn(s, epochs=8, seed=seed).save(d / "digits.keras")
    return {k: d / f"{k}.npz" for k in ("train", "eval", "calib")} | {"source": d / "digits.keras"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed (source CNN and hardening)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--no-audit", action="store_true", help="harden's table only")
    args = ap.parse_args()
    from edgekit.audit.harden import harden, table

    for seed in args.seeds:
        d = args.workdir / f"seed{seed}" if args.workdir else Path(tempfile.mkdtemp(prefix="bench-harden-"))
        d.mkdir(parents=True, exist_ok=True)
        f = data(d, seed)
        t0 = time.perf_counter()
        doc = harden(f["source"], d / "robust.keras", f["train"], f["eval"], epochs=args.epochs, recipe="int8",
                     calibration=f["calib"], seed=seed, force=True, progress=False)
        print(f"== seed {seed}: harden {time.perf_counter() - t0:.0f} s wall")
        print(table(doc))
        if args.no_audit:
            continue
        from edgekit.audit.run import run_audit
        from edgekit.conversion import convert

        src_int8 = convert(f["source"], d / "digits-int8.tflite", recipe="int8", calibration=f["calib"],
                           eval_data=f["eval"], quiet=True, force=True).output
        rows = []
        for name, model, keras in (("source", src_int8, f["source"]),
                                   ("hardened", d / "robust-int8.tflite", d / "robust.keras")):
            a = run_audit(model, keras, f["eval"], progress=False, seed=seed)
            pgd, sq = a["adversarial"]["attacks"]["pgd"][-1], a["blackbox"]["attacks"]["square"][-1]
            rows.append((name, a["accuracy"]["converted"], pgd["source"], pgd["converted"], sq["converted"],
                         a["verdict"]["passed"]))
        print(f"edgekit audit, strongest epsilon (eps {pgd['epsilon']:g}):")
        print(f"{'model':10} {'clean int8':>10} {'PGD keras':>10} {'PGD int8':>9} {'Square int8':>12}  verdict")
        for r in rows:
            print(f"{r[0]:10} {100 * r[1]:9.1f}% {100 * r[2]:9.1f}% {100 * r[3]:8.1f}% {100 * r[4]:11.1f}%  "
                  f"{'PASS' if r[5] else 'FAIL'}")
        (s, h) = rows
        print(f"audit gain at eps {pgd['epsilon']:g}: PGD int8 {100 * (h[3] - s[3]):+.1f} points, Square Attack int8 "
              f"{100 * (h[4] - s[4]):+.1f} points; clean int8 {100 * (h[1] - s[1]):+.1f} points")


if __name__ == "__main__":
    main()
