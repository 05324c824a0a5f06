"""kill -9 during store writes: the harness behind tests/store/test_power_loss.py and bench/bench_store_powerloss.py.

Each injection forks a child that runs one store write (deploy a new version, stage then promote,
or roll back) and kills it with SIGKILL, either at a named step (store.STEPS, through
``store.crash_hook``) or after a random delay. The parent then opens the store as a reader
would: the active version must verify with no fallback needed, and be one of the versions
written. Forking keeps an injection at a few milliseconds (no new interpreter, no imports).

What this proves and what not: SIGKILL tests every interruption point of the write sequence; it
cannot drop data the kernel had not yet written to the disk (a real power cut can). That part
rests on the fsync ordering (files, then their folder, then the index rename, then the folder).

Example:
    >>> stats = run(store_dir, [a, b, c], count=100)        # doctest: +SKIP
    >>> stats["invalid"]
    0
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any, Callable

from . import store as store_mod
from .store import STEPS, ModelStore

OPS = ("deploy", "promote", "rollback")


def _fresh(st: ModelStore, models: list[Path], i: int) -> Path:
    """A model not in the store now (so its files are copied: every step of a write runs)."""
    from ..fsutil import sha256_file

    stored = {p.name for p in st.layout.objects.iterdir()}
    fresh = [m for m in models if sha256_file(m) not in stored]
    return (fresh or models)[i % len(fresh or models)]


def _write(root: Path, models: list[Path], op: str, i: int) -> None:
    st = ModelStore(root, create=True, keep=1)  # keep=1: versions are pruned and copied in again
    model = _fresh(st, models, i)
    # force: the workload cycles versions through rollback and back on purpose (a bad mark must not stop it)
    if op == "deploy":
        st.deploy(model, force=True)
    elif op == "promote":
        st.deploy(model, canary={"calls": 10}, force=True)
        cand = st.index().get("candidate")
        if cand:
            st.promote(cand["sha256"], {"compared": 10}, reason="crash test")
    else:
        st.rollback("crash test")


def _child(root: Path, models: list[Path], op: str, i: int, step: tuple[str, int] | None) -> None:
    """In the forked child: run the write, dying at the nth time it reaches ``step`` if given. Never returns."""
    code = 0
    try:
        if step is not None:
            seen = {"n": 0}

            def hook(name: str) -> None:
                if name == step[0]:
                    seen["n"] += 1
                    if seen["n"] == step[1]:
                        os.kill(os.getpid(), signal.SIGKILL)

            store_mod.crash_hook = hook
        _write(root, models, op, i)
    except BaseException:  # e.g. nothing to roll back to: not a durability failure
        code = 3
    os._exit(code)


def inject(root: Path, models: list[Path], op: str, i: int, *, step: tuple[str, int] | None = None,
           delay_s: float | None = None) -> bool:
    """One write in a child killed at ``step`` (name, nth time) or after ``delay_s``; True when it was killed."""
    pid = os.fork()
    if pid == 0:
        _child(root, models, op, i, step)
    if delay_s is not None:
        time.sleep(delay_s)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status)


def check(root: Path, known: set[str]) -> tuple[str, list[str]]:
    """Open the store as a reader: (served sha256, problems). Problems must be empty."""
    version, problems = ModelStore(root).resolve()
    if version.sha256 not in known:
        problems = problems + [f"serves an unknown version {version.sha256[:12]}"]
    return version.sha256, problems


def timed_write(root: Path, models: list[Path], op: str, i: int) -> float:
    """Seconds one uninterrupted write takes, timed in this process (a child's exit is not part of it)."""
    t0 = time.perf_counter()
    try:
        _write(root, models, op, i)
    except Exception:  # noqa: BLE001 - e.g. nothing to roll back to; the time still counts
        pass
    return time.perf_counter() - t0


def serve_one(root: Path) -> str:
    """``edgekit.store.serve`` on the store and one predict; returns the sha256 it served."""
    import numpy as np

    from .served import serve

    with serve(root, reference_rate=0) as m:
        shape = (1,) + tuple(max(d, 1) for d in m.model.runner.sample_shape)
        m.predict(np.zeros(shape, np.float32))
        return m.sha256


def run(root: str | Path, models: list[str | Path], *, count: int, seed: int = 0,
        serve: Callable[[Path], Any] | None = None, on_progress: Callable[[int], None] | None = None
        ) -> dict[str, Any]:
    """``count`` injections: first one at every (op, step), the rest at random ops and moments.

    serve(root) -> sha256: called after each injection too (e.g. serve_one).
    Run it in a small process (``python -m edgekit.store.crashtest``): forking a process that holds
    TensorFlow costs far more than the write being tested.
    Returns counts and the first problems seen.
    """
    root, models = Path(root), [Path(m) for m in models]
    rng = random.Random(seed)
    ModelStore(root, create=True).deploy(models[0])
    from ..fsutil import sha256_file

    known = {sha256_file(m) for m in models}
    # the median of 3 uninterrupted runs (the first write of a kind can be much slower than the rest)
    durations = {op: sorted(timed_write(root, models, op, k + j) for j in range(3))[1] for k, op in enumerate(OPS)}
    # every step of every op, the first and the second time it is reached (promote stages first)
    plan = [(op, (s, n), None) for op in OPS for s in STEPS for n in (1, 2)]
    while len(plan) < count:
        op = rng.choice(OPS)
        plan.append((op, None, rng.uniform(0.0, durations[op])))
    stats: dict[str, Any] = {"injections": 0, "killed": 0, "killed_at_step": 0, "steps_killed": [], "invalid": 0, "problems": [], "served": 0,
                             "write_ms": {op: round(d * 1000, 2) for op, d in durations.items()}}
    t0 = time.perf_counter()
    for i, (op, step, delay) in enumerate(plan[:count]):
        if op == "rollback" and not ModelStore(root).index().get("good"):
            _write(root, models, "deploy", i)  # something to roll back to (not killed)
        killed = inject(root, models, op, i, step=step, delay_s=delay)
        stats["injections"] += 1
        stats["killed"] += int(killed)
        stats["killed_at_step"] += int(killed and step is not None)
        if killed and step is not None:
            stats["steps_killed"].append(f"{op}:{step[0]}#{step[1]}")
        sha, problems = check(root, known)
        if problems:
            stats["invalid"] += 1
            if len(stats["problems"]) < 5:
                stats["problems"].append({"op": op, "step": step, "delay_s": delay, "problems": problems})
        if serve is not None:
            got = serve(root)
            if got != sha:
                stats["invalid"] += 1
                stats["problems"].append({"op": op, "step": step, "served": got, "expected": sha})
            else:
                stats["served"] += 1
        if on_progress:
            on_progress(i + 1)
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    return stats


def main(argv: list[str] | None = None) -> int:
    """``python -m edgekit.store.crashtest --root DIR --count N [--serve] MODEL...``: prints the stats as JSON."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m edgekit.store.crashtest")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--root", required=True)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--serve", action="store_true", help="edgekit.store.serve and one predict after each")
    a = ap.parse_args(argv)
    stats = run(a.root, a.models, count=a.count, seed=a.seed, serve=serve_one if a.serve else None)
    print(json.dumps(stats))
    return 0 if stats["invalid"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
