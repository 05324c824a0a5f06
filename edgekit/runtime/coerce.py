"""Several inputs: a dict {input name: value} or a sequence in input order -> one float32 batch per input.

Each value is coerced by that input's ``InputCoercer`` (arrays, lists, images: see inputs.py).
A single-input model keeps every form InputCoercer accepts, plus ``{name: value}``. All inputs
of one call must agree on the batch: all single samples, or batches of the same size.

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
        sizes = {b.shape[0] for b in batches}
        if len(set(flags)) > 1 or len(sizes) > 1:
            got = ", ".join(f"{n} {'batch of ' + str(b.shape[0]) if f else 'one sample'}"
                            for n, b, f in zip(self.names, batches, flags))
            raise InputValidationError(f"inputs disagree on the batch ({got}); pass one sample of each "
                                       "or batches of the same size")
        return batches, flags[0]

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
