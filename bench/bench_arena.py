"""How close is edgekit's planned activation arena to the real one, on real published models?

For each model of tests/published_models.ARENA_MODELS (fetched from public wheels into
~/.cache/edgekit/published): edgekit's plan (edgekit.engine.arena) for ai-edge-litert and for
TensorFlow Lite Micro, the real arenas (edgekit.engine.arena_measure: ai-edge-litert's arena read
from its tensors' addresses after allocate_tensors() with the builtin kernels; TFLM's allocator
figures from its Python interpreter, the tflite-micro wheel, unzipped into the cache), and
estimate / real. With --before, also the estimate edgekit printed before this planner (the peak
of live tensors plus conv im2col, from git commit 8ee74e0), next to the same real arenas.

    PYTHONPATH=$PWD python bench/bench_arena.py [--before] [--json OUT.json] [MODEL_NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
BEFORE_COMMIT = "8ee74e0"


def _before_estimator():
    """read_model_info as it was at BEFORE_COMMIT (its arena_bytes is the old estimate), or None."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{BEFORE_COMMIT}:edgekit/engine/tflite_info.py"],
                             capture_output=True, text=True, check=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    mod = types.ModuleType("edgekit.engine._tflite_info_before")
    mod.__package__ = "edgekit.engine"
    sys.modules[mod.__name__] = mod  # dataclasses look their module up there
    exec(compile(src, f"{BEFORE_COMMIT}:tflite_info.py", "exec"), mod.__dict__)
    return mod.read_model_info


def _ratio(est: int | None, real: int | None) -> str:
    return f"{est / real:.2f}" if est and real else "-"


def _kb(n: int | None) -> str:
    return f"{n / 1024:,.1f}" if n else "-"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="short names from ARENA_MODELS (default: all)")
    ap.add_argument("--before", action="store_true", help=f"also the old estimate (git {BEFORE_COMMIT})")
    ap.add_argument("--json", type=Path, help="write the rows as JSON")
    args = ap.parse_args(argv)

    import published_models as published
    from edgekit.engine.arena import plan_arena
    from edgekit.engine.arena_measure import litert_arena_bytes, tflm_arena_bytes

    models = published.fetch_arena_models(args.names or None)
    tflm_site = published.fetch_tflite_micro()
    before = _before_estimator() if args.before else None
    rows = []
    head = (f"{'model':27} {'kind':14} {'before KB':>10} {'LiteRT plan':>11} {'LiteRT real':>11} {'plan/real':>9} "
            f"{'before/real':>11} {'TFLM plan':>10} {'TFLM real':>10} {'plan/real':>9} {'before/real':>11}  caveat")
    print(head)
    for name, (kind, path) in models.items():
        data = path.read_bytes()
        lit, micro = plan_arena(data, "litert"), plan_arena(data, "tflm")
        real_lit = litert_arena_bytes(path)
        real_micro = tflm_arena_bytes(path, tflm_site)
        old = before(data).arena_bytes if before else None
        row = {"model": name, "kind": kind, "file": path.name, "before": old,
               "litert_plan": lit.planned_bytes, "litert_real": real_lit,
               "tflm_plan": micro.total_bytes, "tflm_real": real_micro["total"] if real_micro else None,
               "tflm_real_head": real_micro["head"] if real_micro else None, "caveat": lit.caveat() or micro.caveat()}
        rows.append(row)
        print(f"{name:27} {kind:14} {_kb(old):>10} {_kb(row['litert_plan']):>11} {_kb(real_lit):>11} "
              f"{_ratio(row['litert_plan'], real_lit):>9} {_ratio(old, real_lit):>11} {_kb(row['tflm_plan']):>10} "
              f"{_kb(row['tflm_real']):>10} {_ratio(row['tflm_plan'], row['tflm_real']):>9} "
              f"{_ratio(old, row['tflm_real']):>11}  {row['caveat']}",
              flush=True)
    ratios = [r["litert_plan"] / r["litert_real"] for r in rows if r["litert_real"]]
    ratios_m = [r["tflm_plan"] / r["tflm_real"] for r in rows if r["tflm_real"]]
    inside = sum(0.8 <= x <= 1.25 for x in ratios)
    inside_m = sum(0.8 <= x <= 1.25 for x in ratios_m)
    print(f"LiteRT: plan/real within 0.8-1.25 on {inside} of {len(ratios)} measured models "
          f"(range {min(ratios, default=0):.2f}-{max(ratios, default=0):.2f}); "
          f"TFLM: {inside_m} of {len(ratios_m)} (range {min(ratios_m, default=0):.2f}-{max(ratios_m, default=0):.2f})")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
