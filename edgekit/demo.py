"""``edgekit demo``: the whole trip on real data, offline.

Trains a small CNN on scikit-learn's bundled digits, converts it with fp32,
dynamic and int8, and prints sizes and held-out accuracy against the Keras model;
then runs the int8 model behind the runtime guard on clean and out-of-distribution
digits, profiles fp32 against int8, each in a fresh process, and ends with the safety
audit of the int8 model (edgekit audit) and the report's path.

Example:
    >>> from edgekit.demo import run_demo
    >>> report = run_demo("demo-out", echo=print)     # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable


DEMO_RECIPES = ("fp32", "dynamic", "int8")


def _table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])


def conversion_rows(results: dict, keras_top1: float) -> list[tuple]:
    fp32 = results["fp32"].size_bytes
    rows = [("keras (source)", "-", "-", f"{keras_top1:.2%}", "-", "-")]
    for name, r in results.items():
        acc = r.accuracy
        rows.append((name, f"{r.size_bytes / 1024:.1f} KB", f"{r.size_bytes / fp32:.2f}x",
                     f"{acc.top1_converted:.2%}", f"{acc.top1_delta_points:+.2f}", f"{acc.agreement:.2%}"))
    return rows


def run_demo(out_dir: str | Path = "demo-out", *, epochs: int = 12, seed: int = 0, guard: bool = True,
             profile: bool = True, audit: bool = True, echo: Callable[[str], None] = print) -> dict:
    """Train, convert, guard and profile; returns the ConvertResults, the Keras top-1 and the split."""
    from .conversion import convert
    from .digits import load_split, train_cnn

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    split = load_split(seed=seed)
    echo(f"digits: {len(split.x_train)} training, {len(split.x_calib)} calibration (from training), "
         f"{len(split.x_test)} held-out test images (scikit-learn's bundled data)")
    model = train_cnn(split, epochs=epochs, seed=seed)
    src = out / "digits.keras"
    model.save(src)
    echo(f"trained a {model.count_params():,}-parameter CNN in {time.perf_counter() - t0:.1f} s")
    results = {}
    for recipe in DEMO_RECIPES:
        results[recipe] = convert(src, out / f"digits-{recipe}.tflite", recipe=recipe,
                                  calibration=split.x_calib, eval_data=(split.x_test, split.y_test),
                                  labels=split.labels, preprocessing="digits", force=True, quiet=True)
    keras_top1 = results["fp32"].accuracy.top1_source  # the accuracy check already ran Keras on x_test
    echo("")
    echo("conversion (accuracy on the held-out split; agreement = same top-1 as Keras)")
    echo(_table(conversion_rows(results, keras_top1),
                ("model", "size", "vs fp32", "top-1", "delta pts", "agreement")))
    int8, fp32 = results["int8"].output, results["fp32"].output
    if guard:
        from .runtime.demo import guard_demo

        echo("")
        echo(guard_demo(split, int8, fp32))
    if profile:
        from .profile.demo import profile_demo

        echo("")
        echo(profile_demo(fp32, int8))
    if audit:  # the safety report of the int8 model (edgekit/audit/demo.py)
        from .audit.demo import audit_demo

        echo("")
        echo(audit_demo(split, int8, src, out))
    return {"results": results, "keras_top1": keras_top1, "split": split, "out": out}
