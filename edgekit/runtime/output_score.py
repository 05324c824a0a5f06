"""The guard's output-side signal: how unsure the model's own answer looks. numpy only.

Two scores, both "higher means less like normal input", so one threshold rule fits both:

- ``msp``: 1 - maximum softmax probability (Hendrycks and Gimpel, 2017); on a logits output the
  softmax is taken first;
- ``energy``: the energy score -logsumexp(logits) (Liu et al., 2020), for models that output
  raw logits. It keeps the logits' magnitude, which a softmax throws away.

``output_signal`` says which one applies, from the manifest's task and the output values.
The runtime flags a sample whose score passes the manifest's ``guard.output_threshold``
(written by ``edgekit audit --write-threshold``) as failure kind ``ood``. The input-side signal is
the OOD score of the calibration statistics (edgekit.calibration_stats); the audit reports both and their combination (edgekit.audit.guard_roc).

Example:
    >>> import numpy as np
    >>> probs = np.array([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3]], np.float32)
    >>> output_signal(probs)
    'msp'
    >>> output_score(probs).round(2).tolist()
    [0.02, 0.6]
    >>> logits = np.array([[9.0, 0.0, 0.0], [0.5, 0.2, 0.1]], np.float32)
    >>> output_signal(logits)
    'energy'
    >>> output_score(logits, "energy").round(2).tolist()
    [-9.0, -1.38]
"""

from __future__ import annotations

import numpy as np

SIGNALS = ("msp", "energy")
_SUM_TOLERANCE = 0.02  # like Policy.sum_tolerance: int8 outputs sum to 1 only within their quantization step


def is_probability(outputs: np.ndarray, tolerance: float = _SUM_TOLERANCE) -> bool:
    """True when every row is non-negative and sums to 1 within ``tolerance`` (plus the int8 step).

    Example:
        >>> is_probability(np.array([[0.5, 0.5]])), is_probability(np.array([[2.0, -1.0]]))
        (True, False)
    """
    rows = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    if rows.size == 0 or rows.shape[1] < 2:
        return False
    # An int8 softmax output has up to 256 steps of 1/256: its rows sum to 1 only within n_classes/512.
    tol = tolerance + rows.shape[1] / 512.0
    return bool((rows >= -1e-6).all() and np.all(np.abs(rows.sum(axis=1) - 1.0) <= tol))


def output_signal(outputs: np.ndarray, manifest=None) -> str | None:
    """"msp" for probability outputs, "energy" for logits, None when the model is not a classifier.

    ``manifest``: when given and its task is known to be something else than classification
    (regression), there is no class distribution to judge, whatever the values look like.
    """
    task = getattr(manifest, "task", None)
    rows = np.asarray(outputs).reshape(len(outputs), -1)
    if task not in (None, "unknown", "classification") or rows.shape[1] < 2:
        return None
    return "msp" if is_probability(rows) else "energy"


def msp_score(probs: np.ndarray) -> np.ndarray:
    """1 - max probability per sample: 0 for a certain answer, up to 1 - 1/K for a uniform one."""
    rows = np.asarray(probs, np.float64).reshape(len(probs), -1)
    return 1.0 - rows.max(axis=1)


def energy_score(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """-T * logsumexp(logits / T) per sample; lower (more negative) for confident in-distribution input."""
    z = np.asarray(logits, np.float64).reshape(len(logits), -1) / temperature
    top = z.max(axis=1, keepdims=True)
    return -temperature * (top[:, 0] + np.log(np.exp(z - top).sum(axis=1)))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, classes) logits, float64."""
    z = np.asarray(logits, np.float64).reshape(len(logits), -1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def output_score(outputs: np.ndarray, signal: str | None = None, *,
                 probabilities: bool | None = None) -> np.ndarray:
    """The output-side OOD score per sample (higher = more unusual); ``signal`` None picks one.

    msp on logits takes a softmax first: ``probabilities`` says whether the rows already are a
    distribution (None: look at the values). The runtime passes it, known at load, to keep the check
    off its per-call path.
    """
    signal = signal or output_signal(outputs)
    if signal == "msp":
        if probabilities is None:
            probabilities = is_probability(outputs)
        return msp_score(outputs if probabilities else softmax(outputs))
    if signal == "energy":
        return energy_score(outputs)
    raise ValueError(f"output signal {signal!r}: choose one of {', '.join(SIGNALS)}")
