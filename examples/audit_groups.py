"""`edgekit audit --groups` on the digits CNN: three "sites" of held-out digits, one of them left behind.

Trains the digits CNN (8 epochs, seed 0), converts it to int8 with edgekit, and writes the 450 held-out digits
as eval-sites.npz with an array ``group``: sites a, b and c of 150 digits each, assigned at random. ``--plant``
chooses what happened at site c:
- ``shift``: its camera sits one pixel off (every image moved one pixel right): a real weakness of the model;
- ``labels``: a third of its labels were entered wrong: a data problem the audit also surfaces;
- ``none``: nothing; the sites differ by chance only.
Then runs ``edgekit audit`` with its default ``--max-group-gap 5`` and prints the per-group table.

Run:  .venv/bin/python examples/audit_groups.py [--plant shift|labels|none] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plant", choices=("shift", "labels", "none"), default="shift")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    import edgekit
    from edgekit.cli import main as cli
    from edgekit.conversion.tf import captured
    from edgekit.digits import load_split, train_cnn

    d = args.workdir or Path(tempfile.mkdtemp(prefix="audit-groups-"))
    d.mkdir(parents=True, exist_ok=True)
    s = load_split(seed=0)
    with captured():
        train_cnn(s, epochs=8).save(d / "digits.keras")
    model = edgekit.convert(d / "digits.keras", d / "digits-int8.tflite", recipe="int8", calibration=s.x_calib,
                            eval_data=(s.x_test, s.y_test), labels=s.labels, preprocessing="digits", quiet=True,
                            force=True).output
    rng = np.random.default_rng(3)
    group = np.array(["a", "b", "c"] * 150)[rng.permutation(len(s.x_test))]
    x, y = s.x_test.copy(), s.y_test.copy()
    c = np.flatnonzero(group == "c")
    if args.plant == "shift":
        x[c] = np.roll(x[c], 1, axis=2)
        x[c, :, 0] = 0.0  # the column that came in from the edge is background
    elif args.plant == "labels":
        bad = rng.choice(c, len(c) // 3, replace=False)
        y[bad] = (y[bad] + rng.integers(1, 10, len(bad))) % 10
    np.savez(d / "eval-sites.npz", x=x, y=y, labels=np.array(s.labels), group=group)
    code = cli(["audit", str(model), "--source", str(d / "digits.keras"), "--eval", str(d / "eval-sites.npz"),
                "-o", str(d / "audit.html"), "--json", str(d / "audit.json")])
    import json

    doc = json.loads((d / "audit.json").read_text())
    sec = doc["groups"]
    print(f"\nper site ({args.plant} at site c), {sec['method']}:")
    print(f"{'site':6} {'n':>4} {'keras':>7} {'int8':>7} {'int8 95% CI':>16} {'gap':>7} {'agree':>7} {'guard FPR':>9}")
    for r in sec["groups"]:
        lo, hi = r["converted_ci95"]
        print(f"{r['group']:6} {r['samples']:4d} {100 * r['source']:6.1f}% {100 * r['converted']:6.1f}% "
              f"[{100 * lo:5.1f}, {100 * hi:5.1f}]% {r['converted_gap_points']:+7.2f} {100 * r['agreement']:6.1f}% "
              f"{100 * r['guard_fpr']:8.1f}%")
    print(f"average int8 accuracy {100 * doc['accuracy']['converted']:.1f}%; largest gap {sec['largest_gap']}; "
          f"audit exit code {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
