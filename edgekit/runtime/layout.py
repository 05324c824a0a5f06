"""Where each input's and output's batch axis is, and the moves between a model's layout and the guard's.

Everything in the guard (coercion, checks, the policy's rows, the monitor, the shadow) works on
batch-first arrays ``(N, *sample)``. Most models already are: their tensors lead with the batch
axis (``TensorSpec.batch_axis == 0``) and every move here is the identity. Others are not:
Silero VAD takes ``input [batch, samples]``, a recurrent ``state [2, batch, 128]`` (batch axis 1)
and a scalar ``sr`` shared by the whole call (batch axis None), and returns ``stateN [2, batch, 128]``.
This module is the one place that knows: the engine reads the axis from the file
(``manifest.batch_axis_of``), ``edgekit adopt`` checks it on real data and the manifest records it;
the Runner moves batches into the model's layout just before a run and outputs back just after.

A shared input is batch-first inside the guard too: a read-only broadcast view ``(N, *shape)`` of
the one value, so row selection and the monitor need no special case; the model gets the value once.

Example:
    >>> import numpy as np
    >>> state = Layout(1)
    >>> state.to_model(np.zeros((3, 2, 128), np.float32)).shape    # the guard's rows -> the model's layout
    (2, 3, 128)
    >>> state.batch_first(np.zeros((2, 3, 128), np.float32), 3).shape
    (3, 2, 128)
    >>> Layout(None).to_model(np.broadcast_to(np.float32(16000), (3,)))
    array(16000., dtype=float32)
"""

from __future__ import annotations

import numpy as np

class Layout:
    """One tensor's batch axis (``axis``: an int, or None for a value shared by the whole call)."""

    __slots__ = ("axis", "plain", "unknown")

    def __init__(self, axis: int | None, *, unknown: bool = False):
        self.axis = axis
        self.plain = axis == 0 and not unknown  # the common case: every move is the identity
        self.unknown = unknown  # the file did not say (an output of shape [-1, -1, -1]): checked on each run

    def to_model(self, batch: np.ndarray) -> np.ndarray:
        """A batch-first array -> the model's layout (contiguous: the engines copy otherwise)."""
        k = self.axis
        if k == 0:
            return batch
        if k is None:
            return batch[0, ...]  # an array even for a scalar (``batch[0]`` would be a numpy scalar)
        return np.ascontiguousarray(np.moveaxis(batch, 0, k))

    def batch_first(self, x: np.ndarray, n: int) -> np.ndarray:
        """A model output of a call with ``n`` samples -> ``(n, *sample)``.

        When the axis does not hold ``n`` samples (the file said nothing, or guessed wrong) the
        first axis that does is used and kept; an output with none is shared by the samples."""
        k = self.axis
        if self.plain or (k == 0 and x.ndim and x.shape[0] == n):
            return x
        if k is not None and 0 <= k < x.ndim and x.shape[k] == n:
            return np.moveaxis(x, k, 0) if k else x
        if x.ndim and n in x.shape:
            self.axis = x.shape.index(n)  # evidence from the run itself: the first axis of n samples
            return self.batch_first(x, n)
        return np.broadcast_to(x, (n,) + x.shape)

    def caller_form(self, batch: np.ndarray, sample: bool) -> np.ndarray:
        """A batch-first array -> what a caller passes or gets: the model's layout for a batch; one
        sample (``sample``) without its batch axis; a shared value once."""
        if self.axis is None:
            return batch[0, ...]
        if sample:
            return batch[0]
        return batch if self.axis == 0 else np.moveaxis(batch, 0, self.axis)


def sample_shape(shape, axis: int | None) -> tuple[int, ...]:
    """A tensor's shape without its batch axis (all of it for a shared value)."""
    shape = tuple(int(d) for d in shape)
    return shape if axis is None else shape[:axis] + shape[axis + 1:]


def layouts(specs, manifest_specs=None) -> list[Layout]:
    """One Layout per tensor: the manifest's recorded axis (evidence from adopt) when it has the
    tensor, else the file's (``TensorSpec.batch_axis``); a shape the file leaves wholly dynamic
    (rank 2 or more) is also checked against each run's outputs."""
    out = []
    for i, s in enumerate(specs):
        m = manifest_specs[i] if manifest_specs is not None else None
        unknown = len(s.shape) >= 2 and all(d < 0 for d in s.shape)
        out.append(Layout(s.batch_axis if m is None else m.batch_axis, unknown=unknown))
    return out


def observed_output_axes(session, arrays: dict) -> list[int | None]:
    """Each output's batch axis as a run shows it: ``session`` (an engine session) runs the first
    calibration sample, then the first two (batch-first ``arrays`` by input name, float values);
    the axis that went from 1 to 2 is the batch axis, none means the output is shared by the call.
    Raises InferenceError when the model will not run them (the caller keeps the file's guess)."""
    from ..quant import Quantizer

    runs = []
    for n in (1, 2):
        feeds = []
        for t in session.inputs:
            x = np.asarray(arrays[t.name])[: n if t.batch_axis is not None else 1]
            x = Quantizer(t.scale, t.zero_point, t.dtype)(x.astype(np.float32)) if t.quantized else x.astype(t.dtype)
            feeds.append(Layout(t.batch_axis).to_model(x))
        session.resize([f.shape for f in feeds])
        runs.append([np.asarray(o) for o in session.run(feeds)])
    axes = []
    for one, two, spec in zip(*runs, session.outputs):
        grew = [i for i, (a, b) in enumerate(zip(one.shape, two.shape)) if a == 1 and b == 2]
        axes.append(None if not grew and one.shape == two.shape else grew[0] if len(grew) == 1 else spec.batch_axis)
    return axes
