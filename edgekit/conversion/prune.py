"""Magnitude pruning for Keras 3 models (tensorflow-model-optimization does not support Keras 3).

Each Dense / Conv kernel gets its smallest-magnitude weights zeroed to the target
sparsity (per layer). With labelled training data the model is fine-tuned a few
epochs with the masks re-applied after every batch, so the zeros stay zeros.
The zeros survive conversion; the converter's EXPERIMENTAL_SPARSITY can then
encode them.

Example:
    >>> report = prune_model(model, 0.5)             # doctest: +SKIP
    >>> round(report["sparsity_achieved"], 2)         # doctest: +SKIP
    0.5
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError, UsageError

_PRUNABLE = ("Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose")


def _kernels(model) -> list:
    out = []
    for layer in _walk(model):
        if type(layer).__name__ in _PRUNABLE:
            for w in layer.weights:
                if "kernel" in w.path.split("/")[-1]:
                    out.append(w)
    return out


def _walk(layer):
    yield layer
    for sub in getattr(layer, "layers", []) or []:
        if sub is not layer:
            yield from _walk(sub)


def _masks(kernels, sparsity: float) -> list[np.ndarray]:
    masks = []
    for w in kernels:
        v = np.abs(np.asarray(w.numpy()))
        k = int(round(v.size * sparsity))
        if k == 0:
            masks.append(np.ones_like(v, dtype=bool))
            continue
        # the k-th smallest magnitude is the threshold; ties broken by order so the count is exact
        order = np.argsort(v, axis=None, kind="stable")
        mask = np.ones(v.size, dtype=bool)
        mask[order[:k]] = False
        masks.append(mask.reshape(v.shape))
    return masks


def _apply(kernels, masks) -> None:
    for w, m in zip(kernels, masks):
        w.assign(np.where(m, np.asarray(w.numpy()), 0.0).astype(w.dtype))


def _loss_for(model, y: np.ndarray) -> str:
    out_shape = tuple(model.outputs[0].shape)
    if y.ndim == 1 and np.issubdtype(y.dtype, np.integer) and out_shape[-1] and out_shape[-1] > 1:
        return "sparse_categorical_crossentropy"
    if y.ndim == 2 and y.shape[1] == out_shape[-1] and set(np.unique(y)).issubset({0, 1}):
        return "categorical_crossentropy"
    return "mse"


def prune_model(model, sparsity: float, train: tuple[np.ndarray, np.ndarray] | None = None,
                epochs: int = 2) -> dict[str, Any]:
    """Zero the smallest weights of every Dense/Conv kernel in place; fine-tune if ``train`` is given."""
    if not 0.0 < sparsity < 1.0:
        raise UsageError(f"--prune must be between 0 and 1 (exclusive), got {sparsity}")
    kernels = _kernels(model)
    if not kernels:
        raise UsageError("nothing to prune: the model has no Dense or Conv kernels")
    masks = _masks(kernels, sparsity)
    _apply(kernels, masks)
    fine_tuned = False
    if train is not None:
        x, y = train
        if y is None:
            raise DataError("pruning fine-tune data needs labels (an .npz with x and y)")
        from .tf import captured, import_keras

        keras = import_keras()

        class KeepMasks(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                _apply(kernels, masks)

        model.compile(optimizer=keras.optimizers.Adam(5e-4), loss=_loss_for(model, y))
        with captured():
            model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[KeepMasks()])
        _apply(kernels, masks)
        fine_tuned = True
    total = sum(int(np.asarray(w.numpy()).size) for w in kernels)
    zeros = sum(int((np.asarray(w.numpy()) == 0).sum()) for w in kernels)
    return {
        "sparsity_target": float(sparsity),
        "sparsity_achieved": zeros / total,
        "pruned_kernels": len(kernels),
        "fine_tuned": fine_tuned,
        "fine_tune_epochs": epochs if fine_tuned else 0,
    }
