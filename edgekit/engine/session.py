"""The session protocol: what every engine (TFLite today, ONNX Runtime next) gives the rest of edgekit.

A session is one loaded model in one engine, not thread-safe (callers pool sessions):

- ``label``: what error messages call the model (its path, or "<bytes>");
- ``engine``: the package and version that runs it ("ai-edge-litert 2.3.0"), ``backend`` its object;
- ``inputs`` / ``outputs``: typed specs (manifest.TensorSpec: name, index, shape with -1 for a
  dynamic dimension, dtype, quantization), in the engine's own order, named by the serving
  signature when the file has one;
- ``default_delegates``: False when the model runs only without the engine's default accelerator
  (TFLite: XNNPACK could not prepare the graph);
- ``run(feeds)``: one array per input (a list in ``inputs`` order, or a dict by name) -> a list of
  output arrays in ``outputs`` order, fresh copies; the engine's own failures raise InferenceError;
- ``set_inputs`` / ``invoke`` / ``get_outputs``: ``run`` in three steps, so a profiler can time
  the invoke alone;
- ``resize(shapes)``: one shape per input, then allocate; InferenceError when the engine refuses;
- ``ops()``: the operators in execution order, as ``Op`` (name, input and output tensor indices);
- ``close()``.

Example:
    >>> from edgekit.engine import open_model
    >>> s = open_model(open("digits-int8.tflite", "rb").read(), label="digits-int8.tflite")  # doctest: +SKIP
    >>> [t.name for t in s.inputs], s.run([x])[0].shape                                        # doctest: +SKIP
    (['image'], (1, 10))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence, Union

from ..manifest import TensorSpec

Feeds = Union[Sequence[Any], Mapping[str, Any]]


@dataclass(frozen=True)
class Op:
    """One operator: its name (CONV_2D, SOFTMAX, ...) and the tensor indices it reads and writes."""

    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class Session(Protocol):
    label: str
    engine: str
    backend: Any
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    default_delegates: bool

    def run(self, feeds: Feeds) -> list[Any]: ...

    def set_inputs(self, feeds: Feeds) -> None: ...

    def invoke(self) -> None: ...

    def get_outputs(self) -> list[Any]: ...

    def resize(self, shapes: Sequence[Sequence[int]]) -> None: ...

    def ops(self) -> list[Op]: ...

    def close(self) -> None: ...
