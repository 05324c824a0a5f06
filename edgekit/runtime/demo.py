"""The guard's part of ``edgekit demo``: what EdgeModel catches on real and out-of-distribution digits.

Example:
    >>> from edgekit.digits import load_split
    >>> print(guard_demo(load_split(), "digits-int8.tflite", "digits-fp32.tflite"))   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .model import EdgeModel
from .policy import Policy


def ood_inputs(x_test: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """Digit-shaped inputs no digit looks like: uniform noise, blank (half black, half white), inverted."""
    rng = np.random.default_rng(seed)
    n = len(x_test)
    blank = np.zeros((n, *x_test.shape[1:]), np.float32)
    blank[n // 2:] = 1.0
    return {
        "uniform noise": rng.uniform(0, 1, x_test.shape).astype(np.float32),
        "blank (black, white)": blank,
        "inverted digits": (1.0 - x_test).astype(np.float32),
    }


def guard_demo(split, int8_path: str | Path, fp32_path: str | Path) -> str:
    """Run the int8 model behind the guard on held-out and OOD digits; a text block of what it flagged."""
    policy = Policy(on_ood="fallback")  # flagged samples are answered by the fp32 model
    with EdgeModel.load(int8_path, fallback=fp32_path, policy=policy) as model:
        clean = model.predict(split.x_test)
        top1 = float(np.mean(np.asarray(clean.label).astype(int) == split.y_test))
        rows = [("clean held-out digits", len(split.x_test), clean.flagged.mean(), f"top-1 {top1:.1%}")]
        for name, x in ood_inputs(split.x_test).items():
            pred = model.predict(x)
            conf = float(pred.outputs[0].max(axis=1).mean())
            rows.append((name, len(x), pred.flagged.mean(), f"mean top-1 confidence {conf:.0%}"))
        health = model.health()
        incidents = model.incidents()
    lines = [
        "guard: the int8 model through EdgeModel (flag = value range, int8 clipping or OOD score over 1.0;",
        "       flagged samples were answered by the fp32 fallback and logged as incidents)",
        f"  {'input':24} {'samples':>7} {'flagged':>8}  note",
    ]
    lines += [f"  {name:24} {n:7d} {share:8.1%}  {note}" for name, n, share, note in rows]
    drift = health.get("input", {})
    lines.append(f"  incidents logged: {len(incidents)}; input drift over the last {health.get('window', 0)} "
                 f"samples: {drift.get('drift', 'n/a')} (PSI {drift.get('psi_max', float('nan')):.2f})")
    return "\n".join(lines)
