"""Output-side out-of-distribution scores for one classifier output (higher = more unusual).

- ``msp``: 1 - the maximum softmax probability (softmax is applied unless the output already is
  a probability distribution);
- ``energy``: -logsumexp(logits). On an output that already went through softmax the logits are
  gone (log p sums to a constant), so energy needs a logits output.

The threshold comes from the manifest's ``guard`` section (``edgekit audit --write-threshold``);
EdgeModel flags a sample whose score is above ``guard.output_threshold`` as failure kind ``ood``.
The maths is ``edgekit audit``'s (output_score.py); this one function is where the runtime gets it.

Example:
    >>> import numpy as np
    >>> output_score(np.array([[0.9, 0.1], [0.5, 0.5]], np.float32), "msp", probabilities=True).round(2).tolist()
    [0.1, 0.5]
    >>> output_score(np.array([[10.0, 0.0]], np.float32), "energy").round(2).tolist()
    [-10.0]
"""

from __future__ import annotations

import numpy as np

from .output_score import SIGNALS, energy_score, msp_score


def output_score(outputs: np.ndarray, signal: str, *, probabilities: bool = False) -> np.ndarray:
    """Per-sample score of an (N, classes) output: higher means further from the training data.

    The maths is edgekit audit's (output_score.py); a logits output gets a softmax before msp."""
    if signal == "energy":
        return energy_score(outputs)
    if signal != "msp":
        raise ValueError(f"unknown output signal {signal!r}; choose one of {', '.join(SIGNALS)}")
    if probabilities:
        return msp_score(outputs)
    z = np.asarray(outputs, np.float64).reshape(len(outputs), -1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return msp_score(e / e.sum(axis=1, keepdims=True))
