"""Several inputs: a dict {input name: value} or a sequence in input order -> one float32 batch per input.

Each value is coerced by that input's ``InputCoercer`` (arrays, lists, images: see inputs.py).
A single-input model keeps every form InputCoercer accepts, plus ``{name: value}``. All inputs
of one call must agree on the batch: all single samples, or batches of the same size. An input
with no batch axis (a scalar sample rate) takes one value for the call and is broadcast to the
batch (a read-only view); ``caller_form`` turns batch-first batches back into what a caller passes.

Example:
    >>> import numpy as np
    >>> from edgekit.runtime.inputs import InputCoercer
    >>> c = Coercer(["image", "features"], [InputCoercer((8, 8, 1), None, 16, 10**6), InputCoercer((4,), None, 16, 10**6)])
    >>> batches, batched = c({"features": np.zeros(4), "image": np.zeros((8, 8, 1))})
    >>> [b.shape for b in batches], batched
    ([(1, 8, 8, 1), (1, 4)], False)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputValidationError
from .inputs import InputCoercer


class Coercer:
    """Callable: input(s) -> (list of float32 batches in ``names`` order, batched?)."""

    def __init__(self, names: list[str], coercers: list[InputCoercer]):
        self.names = list(names)
        self.coercers = list(coercers)
        self.single = len(coercers) == 1
        self._shared = [i for i, c in enumerate(coercers) if c.shared] or None
        self._axes = [c.batch_axis for c in coercers]
        self._first = coercers[0]
        self._want = (f"the model has {len(names)} inputs ({', '.join(names)}): pass a dict "
                      f"{{name: value}} or a list of {len(names)} values in that order")

    def __call__(self, x: Any) -> tuple[list[np.ndarray], bool]:
        if self.single:
            if type(x) is not np.ndarray and isinstance(x, Mapping):
                x = self._values(x)[0]
            batch, batched = self._first(x)
            return [batch], batched
        if isinstance(x, Mapping):
            values = self._values(x)
        elif isinstance(x, (list, tuple)) and len(x) == len(self.names):
            values = list(x)
        else:
            raise InputValidationError(f"cannot use a {type(x).__name__} as input: {self._want}")
        batches, flags = [], []
        for name, coerce, value in zip(self.names, self.coercers, values):
            try:
                b, f = coerce(value)
            except InputValidationError as err:
                raise InputValidationError(f"input {name!r}: {err}") from None
            batches.append(b)
            flags.append(f)
        if self._shared is not None:
            return self._broadcast(batches, flags)
        sizes = {b.shape[0] for b in batches}
        if len(set(flags)) > 1 or len(sizes) > 1:
            self._disagree(batches, flags, range(len(batches)))
        return batches, flags[0]

    def _disagree(self, batches, flags, which) -> None:
        got = ", ".join(f"{self.names[i]} {'batch of ' + str(batches[i].shape[0]) if flags[i] else 'one sample'}"
                        for i in which)
        raise InputValidationError(f"inputs disagree on the batch ({got}); pass one sample of each "
                                   "or batches of the same size")

    def _broadcast(self, batches: list[np.ndarray], flags: list[bool]) -> tuple[list[np.ndarray], bool]:
        """Inputs shared by the call repeat (a view) along the batched inputs' batch."""
        rows = [i for i in range(len(batches)) if i not in self._shared]
        if len({flags[i] for i in rows}) > 1 or len({batches[i].shape[0] for i in rows}) > 1:
            self._disagree(batches, flags, rows)
        n = batches[rows[0]].shape[0] if rows else 1
        for i in self._shared:
            batches[i] = np.broadcast_to(batches[i], (n,) + batches[i].shape[1:])
        return batches, flags[rows[0]] if rows else False

    def caller_form(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Batch-first batches (this model's input order) -> values a caller passes for the same samples:
        a state back in its own layout, a shared value once (the fallback and the shadow get these)."""
        if self._shared is None and not any(self._axes):
            return batches
        return [b if k == 0 else b[0, ...] if k is None else np.moveaxis(b, 0, k) for b, k in zip(batches, self._axes)]

    def value_of(self, x: Mapping) -> Any:
        """The value of a one-input model's ``{name: value}``."""
        return self._values(x)[0]

    def _values(self, x: Mapping) -> list[Any]:
        unknown = sorted(str(k) for k in x if k not in self.names)
        missing = [n for n in self.names if n not in x]
        if unknown or missing:
            parts = ([f"unknown {', '.join(map(repr, unknown))}"] if unknown else []) + (
                [f"missing {', '.join(map(repr, missing))}"] if missing else [])
            raise InputValidationError(f"input names: {'; '.join(parts)}; the model's inputs are "
                                       f"{', '.join(self.names)}")
        return [x[n] for n in self.names]
