"""1,000 kill -9 injections during store writes (deploy, stage + promote, rollback): after each, the store
must open on a valid, verified version and edgekit.store.serve must serve it (one predict).

The first injections kill at every named step of every write (store.STEPS, first and second time
reached); the rest at random moments inside a write (uniform over the median duration of an
uninterrupted write). Each injection is a forked child: no new interpreter per injection.

SIGKILL interrupts the write sequence anywhere; it cannot drop data the kernel had not yet written
(a real power cut can), so it tests the ordering of the writes, not the disk's fsync. For that
reason --dir defaults to /dev/shm (tmpfs: fsync costs nothing, the kill points are the same);
pass --dir on a real disk to see its fsync cost too.

Run:  .venv/bin/python bench/bench_store_powerloss.py [--count 1000] [--dir /dev/shm] [--models DIR]
Acceptance (issue 12): 1,000 injections, 0 invalid, 1,000 served.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("EDGEKIT_CACHE_DIR", tempfile.mkdtemp(prefix="edgekit-bench-cache-"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RECIPES = ("fp32", "dynamic", "int8", "fp16")


def build_models(out: Path) -> list[Path]:
    """Four real digits models (one trained CNN, four recipes), reused when already in ``out``."""
    paths = [out / f"digits-{r}.tflite" for r in RECIPES]
    if all(p.exists() for p in paths):
        return paths
    import edgekit
    from edgekit.digits import load_split, train_cnn

    d = load_split(seed=0)
    out.mkdir(parents=True, exist_ok=True)
    train_cnn(d, epochs=4).save(out / "digits.keras")
    for r, p in zip(RECIPES, paths):
        edgekit.convert(out / "digits.keras", p, recipe=r, calibration=d.x_calib, eval_data=(d.x_test, d.y_test),
                        labels=d.labels, preprocessing="digits", quiet=True)
    return paths


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--dir", default="/dev/shm", help="where the store lives during the run")
    ap.add_argument("--models", default=None, help="folder for the four models (built there when missing)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    folder = Path(a.models) if a.models else Path(tempfile.gettempdir()) / "edgekit-bench-store-models"
    if a.build_only:
        build_models(folder)
        return 0
    # TensorFlow builds the models in a child: forking a process that holds it would cost more than the writes
    subprocess.run([sys.executable, __file__, "--build-only", "--models", str(folder)], check=True)
    models = build_models(folder)

    from edgekit.progress import Progress
    from edgekit.store import crashtest

    serve = crashtest.serve_one
    root = Path(tempfile.mkdtemp(prefix="edgekit-powerloss-", dir=a.dir))
    try:
        with Progress("kill -9", total=a.count) as bar:
            stats = crashtest.run(root, models, count=a.count, seed=a.seed, serve=serve,
                                  on_progress=lambda n: bar.advance())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    steps = stats.pop("steps_killed")
    stats["named_steps_killed"] = len(steps)
    stats["ms_per_injection"] = round(stats["seconds"] * 1000 / max(1, stats["injections"]), 1)
    stats["dir"] = a.dir
    print(json.dumps(stats, indent=1))
    ok = stats["invalid"] == 0 and stats["served"] == stats["injections"] == a.count
    print(f"{stats['injections']} injections, {stats['killed']} killed inside a write, {stats['invalid']} invalid, "
          f"{stats['served']} served by edgekit.store.serve, {stats['seconds']} s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
