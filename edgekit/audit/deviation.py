"""How far a model's outputs move from their clean values: the robustness figure for any task.

Class scores have a top-1 to compare; boxes, masks, regressed values and audio frames do not.
For those the audit measures each output's deviation from its own clean output on the same
samples: the relative error (L2 norm of the change over the L2 norm of the clean output) and
the SQNR in dB (clean output power over change power; higher is better, null when nothing
changed). numpy only.

Example:
    >>> import numpy as np
    >>> clean = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    >>> deviation(clean, clean + 0.1)["relative_error"], deviation(clean, clean + 0.1)["sqnr_db"]
    (0.1414, 16.99)
    >>> deviation(clean, clean)["sqnr_db"] is None
    True
"""

from __future__ import annotations

from typing import Callable

import numpy as np

TINY = 1e-12  # a clean output that is all zeros must not divide by zero


def deviation(clean: np.ndarray, out: np.ndarray) -> dict[str, float | None]:
    """Relative error and SQNR (dB) of ``out`` against ``clean`` over the whole batch (same shapes)."""
    c = clean.astype(np.float64).ravel()
    noise = float(np.sum((out.astype(np.float64).ravel() - c) ** 2))
    signal = float(np.sum(c ** 2))
    rel = np.sqrt(noise / max(signal, TINY))
    sqnr = None if noise == 0.0 else round(10.0 * np.log10(max(signal, TINY) / noise), 2)
    return {"relative_error": round(float(rel), 4), "sqnr_db": sqnr}


def sample_relative_error(clean: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Per sample (axis 0): L2 norm of the change over the L2 norm of the clean output."""
    c = clean.reshape(len(clean), -1).astype(np.float64)
    d = out.reshape(len(out), -1).astype(np.float64) - c
    return np.linalg.norm(d, axis=1) / np.maximum(np.linalg.norm(c, axis=1), TINY)


def measure(clean: list[np.ndarray], out: list[np.ndarray], names: list[str],
            kinds: dict[str, str]) -> dict[str, dict]:
    """Per output name: its deviation, and for class scores also the share whose top-1 stayed the same."""
    res = {}
    for name, c, o in zip(names, clean, out):
        res[name] = deviation(c, o)
        if kinds[name] == "class_scores":
            top = c.reshape(len(c), -1).argmax(axis=1) == o.reshape(len(o), -1).argmax(axis=1)
            res[name]["top1_agreement"] = round(float(top.mean()), 4)
    return res


def deviation_loss(clean: list[np.ndarray]) -> Callable[[list[np.ndarray], np.ndarray], np.ndarray]:
    """A loss for blackbox.square_attack that drives every output away from its clean value.

    Per sample: 1 minus the mean relative error of the outputs, so the attack stops on a sample
    once its outputs changed by as much as they are large (relative error 1: the answer is gone).
    """
    def loss(outputs: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
        errs = [sample_relative_error(c[rows], o) for c, o in zip(clean, outputs)]
        return 1.0 - np.mean(errs, axis=0)

    return loss


def output_kinds(names: list[str], classifiers: list[bool]) -> dict[str, str]:
    """Per output name: "class_scores" (probabilities, or the classification task's first output) or "values"."""
    return {n: "class_scores" if c else "values" for n, c in zip(names, classifiers)}


MEASURED = {
    "class_scores": "relative error and SQNR (dB) of the scores against the clean scores, and top-1 agreement "
                    "with the clean answers",
    "values": "relative error and SQNR (dB) against the clean output (boxes, scores, masks, regressed values)",
}
