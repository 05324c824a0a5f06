"""1,000 byte-mutated and truncated copies of a real .tflite through EdgeModel.load + predict.

Issue 3 acceptance: zero crashes of the calling process; every copy is either rejected with an
edgekit error or loaded and run.

The calling process here is a worker that loads the mutants one after another, in-process, the
way an app would. The parent only watches it: if the worker ever died (a segfault that got past
the guard), the parent would count a caller crash for that mutant and start a new worker after
it. Mutants are made from a seed (bit flips, overwritten bytes, zeroed ranges, truncations,
spliced chunks), so a run can be repeated.

Run:  .venv/bin/python bench/fuzz_models.py [--count 1000] [--seed 0] [--model digits-int8.tflite]
      (without --model it builds the digits int8 model with TensorFlow, as bench_runtime does)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KINDS = ("flip", "overwrite", "zero", "truncate", "splice")


def mutate(data: bytes, index: int, seed: int) -> tuple[str, bytes]:
    """The index-th mutant of ``data`` (deterministic)."""
    rng = np.random.default_rng([seed, index])
    kind = KINDS[index % len(KINDS)]
    buf = bytearray(data)
    n = len(buf)
    if kind == "truncate":
        return kind, bytes(buf[: int(rng.integers(0, n))])
    for _ in range(int(rng.integers(1, 9))):
        at = int(rng.integers(0, n))
        if kind == "flip":
            buf[at] ^= 1 << int(rng.integers(0, 8))
        elif kind == "overwrite":
            buf[at:at + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        elif kind == "zero":
            size = int(rng.integers(1, 64))
            buf[at:at + size] = bytes(len(buf[at:at + size]))
        else:  # splice: copy a chunk from elsewhere in the file over this spot
            src, size = int(rng.integers(0, n)), int(rng.integers(4, 64))
            buf[at:at + size] = data[src:src + size]
    return kind, bytes(buf)


def worker(model: Path, seed: int, start: int, count: int) -> int:
    """Load and run mutants start..start+count-1 in this process; one JSON line per mutant."""
    from edgekit.errors import EdgekitError
    from edgekit.runtime import EdgeModel, Policy

    policy = Policy(verify_sha256=False, on_load="raise")  # the hash would refuse them all: test the loader
    data = model.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(start, start + count):
            kind, mutant = mutate(data, i, seed)
            path = Path(tmp) / f"mutant-{i}.tflite"
            path.write_bytes(mutant)
            rec = {"i": i, "kind": kind}
            try:
                m = EdgeModel.load(path, policy=policy)
                try:
                    m.predict(np.zeros(m.runner.sample_shape, np.float32))
                    rec["outcome"] = "loaded and ran"
                except EdgekitError as err:
                    rec.update(outcome="loaded, predict refused", error=type(err).__name__)
            except EdgekitError as err:
                rec.update(outcome="rejected", error=type(err).__name__, reason=_reason(str(err)))
            except Exception as err:  # not an edgekit error: a bug to report
                rec.update(outcome="OTHER EXCEPTION", error=f"{type(err).__name__}: {err}"[:200])
            path.unlink()
            print(json.dumps(rec), flush=True)
    return 0


def _reason(msg: str) -> str:
    for key, label in (("crashed the probe", "probe process crashed"), ("did not finish", "probe timed out"),
                       ("refused by the load probe", "probe refused"), ("TFL3", "no TFL3 identifier"),
                       ("too small", "too small"), ("truncated or corrupt", "root offset out of range")):
        if key in msg:
            return label
    return "other load error"


def run_all(model: Path, count: int, seed: int) -> dict:
    outcomes: collections.Counter = collections.Counter()
    reasons: collections.Counter = collections.Counter()
    caller_crashes = 0
    nxt = 0
    env = dict(os.environ, EDGEKIT_CACHE_DIR=tempfile.mkdtemp(prefix="edgekit-fuzz-cache-"))
    while nxt < count:
        proc = subprocess.Popen([sys.executable, __file__, "--worker", str(model), str(seed), str(nxt),
                                 str(count - nxt)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=env)
        for line in proc.stdout:
            rec = json.loads(line)
            outcomes[rec["outcome"]] += 1
            if "reason" in rec:
                reasons[rec["reason"]] += 1
            nxt = rec["i"] + 1
            if nxt % 100 == 0:
                print(f"  {nxt} mutants done", file=sys.stderr, flush=True)
        code = proc.wait()
        if nxt < count:  # the worker died on mutant `nxt`: the calling process crashed
            caller_crashes += 1
            outcomes[f"CALLER CRASHED (exit {code})"] += 1
            nxt += 1
    return {"outcomes": outcomes, "reasons": reasons, "caller_crashes": caller_crashes}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", type=Path, help="a .tflite to mutate (default: build the digits int8 model)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            from bench_runtime import build_models

            model = build_models(Path(tmp))["digits int8"][0]
        size = model.stat().st_size
        t0 = time.perf_counter()
        res = run_all(model, args.count, args.seed)
    took = time.perf_counter() - t0
    print(f"{args.count} mutants of {model.name} ({size:,} bytes), "
          f"seed {args.seed}, {took:.0f} s ({took / args.count * 1000:.0f} ms each, probe included)")
    for outcome, n in res["outcomes"].most_common():
        print(f"  {outcome:28} {n:5d}")
    for reason, n in res["reasons"].most_common():
        print(f"    rejected: {reason:22} {n:5d}")
    other = res["outcomes"].get("OTHER EXCEPTION", 0)
    print(f"crashes of the calling process: {res['caller_crashes']}; non-edgekit exceptions: {other}")
    return 0 if res["caller_crashes"] == 0 and other == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
