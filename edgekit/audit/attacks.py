"""White-box attacks on the source model (TensorFlow gradients), to feed to the converted one.

FGSM (Goodfellow et al., 2015): one step of size epsilon along the sign of the loss
gradient. PGD (Madry et al., 2018): a random start in the epsilon ball, then ``steps``
signed steps of ``2.5 * epsilon / steps``, projected back into the ball each time.
Epsilons are in the model's input units (L-infinity), and results are clipped to the
data's value range, so an attack never leaves the inputs the model was built for.

The loss is cross-entropy against the reference labels (the eval labels, or the
source's own top-1 when there are none); probabilities or logits are detected from
the source's clean output.

Example:
    >>> x_adv = pgd(keras_model, x, y, epsilon=0.1, value_range=(0, 1))   # doctest: +SKIP
"""

from __future__ import annotations

import weakref

import numpy as np

from ..conversion.tf import import_tf

BATCH = 256
_compiled: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> {from_logits: graph}


def _loss_fn(tf, from_logits: bool):
    def loss(model, x, y):
        out = model(x, training=False)
        out = out[0] if isinstance(out, (list, tuple)) else out
        out = tf.reshape(out, (tf.shape(out)[0], -1))
        y = tf.cast(y, tf.int32)
        if from_logits:
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=out)
        picked = tf.gather(out, y, axis=1, batch_dims=1)
        return -tf.math.log(tf.maximum(picked, 1e-12))  # the floor keeps a saturated softmax's gradient finite
    return loss


def _grad_sign_fn(tf, model, from_logits: bool):
    """sign(d loss / d x) for ``model`` as one compiled graph (built once per model and loss kind).

    Why a graph: eager backprop through a Conv2D also computes the gradient of its filter
    (Conv2DBackpropFilter), which an attack never uses; that oneDNN kernel is where a published
    64x64 BatchNorm CNN's audit died with SIGSEGV. In a graph the runtime prunes what the
    returned gradient does not need, so that kernel never runs, and the PGD loop runs faster.
    """
    per_model = _compiled.setdefault(model, {})
    if from_logits not in per_model:
        loss = _loss_fn(tf, from_logits)

        @tf.function(reduce_retracing=True)
        def grad_sign(x, y):
            with tf.GradientTape() as tape:
                tape.watch(x)
                value = loss(model, x, y)
            return tf.sign(tape.gradient(value, x))

        per_model[from_logits] = grad_sign
    return per_model[from_logits]


def _batched(fn, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.concatenate([fn(x[s:s + BATCH], y[s:s + BATCH]) for s in range(0, len(x), BATCH)])


def fgsm(model, x: np.ndarray, y: np.ndarray, epsilon: float, value_range: tuple[float, float], *,
         from_logits: bool = False) -> np.ndarray:
    """x + epsilon * sign(grad of the loss), clipped to value_range."""
    tf = import_tf()
    grad_sign = _grad_sign_fn(tf, model, from_logits)
    lo, hi = value_range

    def one(xb, yb):
        xt = tf.convert_to_tensor(xb, tf.float32)
        adv = xt + epsilon * grad_sign(xt, tf.convert_to_tensor(yb))
        return tf.clip_by_value(adv, lo, hi).numpy()

    return _batched(one, x, y)


def pgd(model, x: np.ndarray, y: np.ndarray, epsilon: float, value_range: tuple[float, float], *,
        steps: int = 10, seed: int = 0, from_logits: bool = False) -> np.ndarray:
    """Projected gradient descent in the L-infinity ball of radius epsilon, from a seeded random start."""
    tf = import_tf()
    grad_sign = _grad_sign_fn(tf, model, from_logits)
    lo, hi = value_range
    alpha = 2.5 * epsilon / steps  # Madry et al.'s step: the walk can cross the ball in under half the steps
    gen = np.random.default_rng(seed)

    def one(xb, yb):
        x0 = tf.convert_to_tensor(xb, tf.float32)
        yt = tf.convert_to_tensor(yb)
        start = xb + gen.uniform(-epsilon, epsilon, xb.shape).astype(np.float32)
        adv = tf.clip_by_value(tf.convert_to_tensor(start), lo, hi)
        for _ in range(steps):
            adv = adv + alpha * grad_sign(adv, yt)
            adv = tf.clip_by_value(tf.clip_by_value(adv, x0 - epsilon, x0 + epsilon), lo, hi)
        return adv.numpy()

    return _batched(one, x, y)


ATTACKS = {"fgsm": fgsm, "pgd": pgd}
