"""Ring deploys timed on a fleet on this machine: six real stores (five behind a real sshd on 127.0.0.1, one
local), each served by its own app process feeding real digits (tests/fleet/local_fleet.py).

Rings canary (2 devices, one local), early (2), all (2). Two rollouts with ``edgekit fleet deploy``, run as a
separate process and timed from its start to its exit: a good candidate (the digits CNN in int8, signed)
that every ring promotes, then a broken one (the same CNN trained on shuffled labels, signed) that the
canary ring rejects. The apps call about --rate times a second each; a canary of --calls compared calls
therefore takes about calls/rate seconds per ring, plus the SSH round trips and the poll interval.

Needs root (the sshd of tests/profile/sshd.py) and TensorFlow (the models are trained once and cached).

Run:  .venv/bin/python bench/bench_fleet_rollout.py [--calls 200] [--poll 1] [--rate 100] [--models DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("EDGEKIT_CACHE_DIR", tempfile.mkdtemp(prefix="edgekit-bench-cache-"))
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "fleet"), str(ROOT / "tests" / "profile"), str(ROOT / "bench")]

RINGS = {"pi-1": "canary", "gw": "canary", "pi-2": "early", "pi-3": "early", "pi-4": "all", "pi-5": None}


def broken_model(out: Path) -> Path:
    """The digits CNN trained on shuffled labels (chance accuracy), converted like the good ones; cached."""
    path = out / "digits-broken.tflite"
    if path.exists():
        return path
    import numpy as np

    import edgekit
    from edgekit.digits import load_split, train_cnn

    d = load_split(seed=0)
    shuffled = dataclasses.replace(d, y_train=np.random.default_rng(1).permutation(d.y_train))
    train_cnn(shuffled, epochs=4).save(out / "broken.keras")
    edgekit.convert(out / "broken.keras", path, recipe="fp32", calibration=d.x_calib, eval_data=(d.x_test, d.y_test),
                    labels=d.labels, preprocessing="digits", quiet=True)
    return path


def keypair(folder: Path) -> tuple[Path, Path]:
    key, pub = folder / "key.pem", folder / "pub.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return key, pub


def timed_rollout(model: Path, fleet, journal: Path, args) -> tuple[float, int, dict]:
    cmd = [sys.executable, "-c", "from edgekit.cli import entry; entry()", "fleet", "deploy", str(model),
           "--inventory", str(fleet.inventory), "--rings", "canary,early,all", "--calls", str(args.calls),
           "--poll", str(args.poll), "--journal", str(journal), "--json"]
    print("$ edgekit " + " ".join(cmd[3:]), flush=True)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    took = time.perf_counter() - t0
    print(res.stderr, end="", flush=True)
    return took, res.returncode, json.loads(res.stdout)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--poll", type=float, default=1.0)
    p.add_argument("--rate", type=float, default=100.0, help="calls a second each app makes (about)")
    p.add_argument("--models", type=Path, default=Path.home() / ".cache" / "edgekit" / "bench-fleet")
    args = p.parse_args()

    import local_fleet
    import sshd
    from bench_store_powerloss import build_models
    from edgekit.digits import load_split

    args.models.mkdir(parents=True, exist_ok=True)
    fp32, _, int8, _ = build_models(args.models)
    broken = broken_model(args.models)
    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-fleet-"))
    key, pub = keypair(work)
    server = sshd.start(work / "sshd")
    fleet = None
    try:
        v1 = local_fleet.signed_copy(fp32, work / "models", "v1", key)
        fleet = local_fleet.start(work, server, v1, key, pub, load_split(seed=0).x_test, RINGS,
                                  interval_s=1.0 / args.rate)
        t_apps = time.monotonic()
        calls0 = {n: fleet.app_report(n)["calls"] for n in RINGS}
        rows = []
        for label, src in (("good (int8)", int8), ("broken (shuffled labels)", broken)):
            cand = local_fleet.signed_copy(src, work / "models", label.split()[0], key)
            took, code, doc = timed_rollout(cand, fleet, work / f"{label.split()[0]}.json", args)
            rows.append((label, took, code, doc))
        fleet.check_apps()
        rate = sum(fleet.app_report(n)["calls"] - calls0[n] for n in RINGS) / len(RINGS) / (time.monotonic() - t_apps)
    finally:
        if fleet is not None:
            fleet.stop()
        sshd.stop(server)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(RINGS)} devices ({len(RINGS) - 1} over SSH, 1 local), rings canary/early/all, "
          f"--calls {args.calls}, --poll {args.poll:g}, apps measured at {rate:.0f} calls/s each (mean)")
    print(f"{'candidate':26} {'exit':>4} {'outcome':8} {'total s':>8}  per ring (s)")
    for label, took, code, doc in rows:
        rings = ", ".join(f"{r['name']} {r['state']} {r['seconds']:.1f}" if r.get("seconds") is not None
                          else f"{r['name']} {r['state']}" for r in doc["rings"])
        print(f"{label:26} {code:>4} {doc['state']:8} {took:8.1f}  {rings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
