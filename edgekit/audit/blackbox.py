"""Square Attack (Andriushchenko et al., 2020), L-infinity, score-based: attacks the file that ships.

It needs only the model's output scores, so it runs against the converted model through
the runtime (no gradients, no source). Each query step changes one random square window
(per channel +epsilon or -epsilon around the clean input) of every not-yet-fooled sample,
and keeps the change if the margin (score of the reference class minus the best other
class) did not grow. The window's area share shrinks on the paper's schedule. Ties are
kept too: an int8 softmax has flat steps, and walking along them finds the next edge.

Example:
    >>> import numpy as np
    >>> w = np.array([[2.0, -1.0], [-1.0, 2.0]])                 # a linear 2-class model on 2 features
    >>> predict = lambda x: x.reshape(len(x), -1) @ w
    >>> x, y = np.array([[[[0.3]], [[0.0]]]], np.float32), np.array([0])
    >>> adv = square_attack(predict, x, y, epsilon=0.25, value_range=(-1, 1), queries=50)
    >>> int(predict(adv).argmax(axis=1)[0]), bool(np.abs(adv - x).max() <= 0.25 + 1e-6)
    (1, True)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

P_INIT = 0.05  # initial share of the image one window covers (the paper's L-inf setting)


def _margin(scores: np.ndarray, y: np.ndarray, logits: bool) -> np.ndarray:
    """Reference-class score minus the best other class; below 0 means the sample is misclassified."""
    s = scores.astype(np.float64) if logits else np.log(np.maximum(scores, 1e-12))
    rows = np.arange(len(y))
    own = s[rows, y]
    s = s.copy()
    s[rows, y] = -np.inf
    return own - s.max(axis=1)


def _window_share(i: int, queries: int) -> float:
    """The paper's schedule (rescaled to the budget, as they do for budgets other than 10k): halve at fixed steps."""
    t = int(i / max(queries, 1) * 10000)
    for step, div in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128),
                      (8000, 256)):
        if t <= step:
            return P_INIT / div
    return P_INIT / 512


def square_attack(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray, epsilon: float,
                  value_range: tuple[float, float], *, queries: int = 300, seed: int = 0, logits: bool = False,
                  on_query: Callable[[], None] | None = None,
                  loss: Callable[[object, np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Adversarial inputs within ``epsilon`` (L-inf) of x, from at most ``queries`` calls of ``predict``.

    x: (N, H, W, C), or (N, D) treated as (N, D, 1, 1). predict(batch) -> (n, classes) scores.
    loss(predict(batch), rows) -> per-sample value the attack lowers, rows being the batch's sample
    indices in x; a sample is done once it is below 0. Default: the class margin for labels y
    (deviation.deviation_loss drives the outputs of any other model away from their clean values).
    """
    if loss is None:
        def loss(scores, rows):
            return _margin(scores, y[rows], logits)

    gen = np.random.default_rng(seed)
    lo, hi = value_range
    shape = x.shape
    x4 = x.reshape(len(x), shape[1], -1, shape[-1] if x.ndim == 4 else 1).astype(np.float32)
    n, h, w, c = x4.shape
    # start: vertical stripes of +-epsilon, as in the paper
    adv = np.clip(x4 + epsilon * gen.choice([-1.0, 1.0], (n, 1, w, c)).astype(np.float32), lo, hi)
    margin = loss(predict(adv.reshape(shape)), np.arange(n))
    for i in range(queries - 1):
        live = np.flatnonzero(margin >= 0)
        if on_query is not None:
            on_query()
        if len(live) == 0:
            break
        side = max(1, min(h, w, int(round(np.sqrt(_window_share(i, queries) * h * w)))))
        cand = adv[live].copy()
        for j, k in enumerate(live):
            r, q = gen.integers(0, h - side + 1), gen.integers(0, w - side + 1)
            cand[j, r:r + side, q:q + side, :] = x4[k, r:r + side, q:q + side, :] + \
                epsilon * gen.choice([-1.0, 1.0], (1, 1, c))
        cand = np.clip(cand, lo, hi)
        m = loss(predict(cand.reshape((len(live),) + shape[1:])), live)
        keep = m <= margin[live]
        adv[live[keep]] = cand[keep]
        margin[live[keep]] = m[keep]
    return adv.reshape(shape)
