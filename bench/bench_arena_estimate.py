"""How close is edgekit.modelinfo's activation-arena estimate to ai-edge-litert's real arena?

The real figure: after allocate_tensors() (builtin kernels, no delegate, so every tensor lives in
TFLite's arena), each non-constant tensor's buffer address comes from Interpreter.tensor(i); the
bytes those buffers cover (their union: tensors the planner lets share memory count once),
including the kernels' temporaries (im2col and the like), which TFLite also plans into the arena. The estimate is the peak
of live non-constant tensors over the op order (no temporaries, no alignment). Prints one row per
model and the ratio real / estimate, measured in this run.

    PYTHONPATH=$PWD python bench/bench_arena_estimate.py MODEL.tflite [MODEL.tflite ...]
"""

from __future__ import annotations

import sys

import numpy as np


def real_arena_bytes(path: str, constant: set[int]) -> int:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=path,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    spans = []
    for i in range(interp._interpreter.NumTensors(0)):
        if i in constant:
            continue
        try:
            interp._get_tensor_details(i, 0)  # refuses shapeless temporaries, whose tensor() would segfault
            arr = interp.tensor(i)()
        except ValueError:  # no shape or no data
            continue
        if not isinstance(arr, np.ndarray) or arr.nbytes == 0:
            continue
        spans.append((arr.ctypes.data, arr.ctypes.data + arr.nbytes))
    # Bytes covered by the union of the tensors' buffers: tensors the planner lets share memory
    # count once; a tensor allocated on its own (dynamic ones) counts its own size.
    covered, end = 0, None
    for a, b in sorted(spans):
        if end is None or a >= end:
            covered += b - a
            end = b
        elif b > end:
            covered += b - end
            end = b
    return covered


def main(paths: list[str]) -> None:
    from edgekit.engine.tflite_info import load_model_info

    print(f"{'model':40} {'estimate KB':>12} {'real KB':>10} {'real/estimate':>14}")
    for p in paths:
        info = load_model_info(p)
        constant = {t.index for t in info.tensors if t.constant}
        real = real_arena_bytes(p, constant)
        ratio = real / info.arena_bytes if info.arena_bytes else float("nan")
        print(f"{p[-40:]:40} {info.arena_bytes / 1024:12.1f} {real / 1024:10.1f} {ratio:14.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
