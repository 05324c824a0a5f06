"""The real activation arena of a .tflite, measured by the interpreters themselves (bench and tests).

Two measurements, each the most faithful one its runtime allows from Python:

- ``litert_arena_bytes``: ai-edge-litert with the builtin kernels (no delegate, so every activation
  lives in TFLite's arena) after ``allocate_tensors()``. The interpreter does not report its arena
  size, so it is read from the tensors' buffer addresses: the arena is one allocation in which the
  planner places every activation and kernel temporary at an offset aligned to 64 bytes, so those
  buffers tile one contiguous block from the arena's start. The bytes from the lowest to the highest
  address of the block that holds the model's inputs are the arena's used size. Weights expanded at
  load (DEQUANTIZE / DENSIFY of constants) and variables live in other allocations and are left out.
- ``tflm_arena_bytes``: TensorFlow Lite Micro's Python interpreter (the ``tflite-micro`` wheel, x86 build
  with the reference kernels) prints its RecordingMicroAllocator's figures: ``head`` is the planned,
  shared region (activations and scratch), ``tail`` the persistent one (variables, kernel data,
  per-tensor and per-node bookkeeping). Their sum is the ``tensor_arena`` a firmware must declare
  (on a 64-bit host; a 32-bit MCU's bookkeeping structures are smaller).

Example:
    >>> litert_arena_bytes("face_detection_short_range.tflite")       # doctest: +SKIP
    1425408
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

_ALIGN = 64  # TFLite's kDefaultTensorAlignment


def litert_arena_bytes(path: str | Path) -> int | None:
    """Used bytes of ai-edge-litert's activation arena for ``path`` (builtin kernels, no delegate), or None
    when the builtin kernels cannot prepare the model (a custom op only XNNPACK has). Runs in a child
    process: reading some tensors of some models (resource variables) crashes the interpreter."""
    code = "import sys; from edgekit.engine.arena_measure import _litert_here; print(_litert_here(sys.argv[1]))"
    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": root})
    lines = done.stdout.strip().splitlines()
    return int(lines[-1]) if done.returncode == 0 and lines and lines[-1].isdigit() else None


def _litert_here(path: str) -> int:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_path=str(path),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interp.allocate_tensors()
    inputs = {d["index"] for d in interp.get_input_details()}
    spans, anchors = [], []
    for i in range(interp._interpreter.NumTensors(0)):
        try:
            interp._get_tensor_details(i, 0)  # refuses shapeless temporaries, whose tensor() would segfault
            arr = interp.tensor(i)()
        except ValueError:  # no shape or no data
            continue
        if not isinstance(arr, np.ndarray) or arr.nbytes == 0:
            continue
        spans.append((arr.ctypes.data, arr.ctypes.data + arr.nbytes))
        if i in inputs:
            anchors.append(arr.ctypes.data)
    return _block_extent(spans, anchors)


def _block_extent(spans: list[tuple[int, int]], anchors: list[int]) -> int:
    """Extent of the run of spans that touch or overlap (gaps under one alignment step are padding)
    and hold an anchor address; the largest run when no anchor is given."""
    blocks: list[list[int]] = []
    for a, b in sorted(spans):
        if blocks and a < blocks[-1][1] + _ALIGN:
            blocks[-1][1] = max(blocks[-1][1], b)
        else:
            blocks.append([a, b])
    held = [blk for blk in blocks if any(blk[0] <= x < blk[1] for x in anchors)]
    pick = held or blocks
    return max((b - a for a, b in pick), default=0)


_TFLM_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from tflite_micro.python.tflite_micro import runtime
runtime.Interpreter.from_file(sys.argv[2], arena_size=int(sys.argv[3])).print_allocations()
"""
_TFLM_LINE = re.compile(r"Arena allocation (head|tail) (\d+) bytes")


def tflm_arena_bytes(path: str | Path, tflm_site: str | Path, *, arena_limit: int = 512 * 2**20) -> dict | None:
    """{'head': bytes, 'tail': bytes, 'total': bytes} from TFLM's allocator, or None when TFLM cannot
    allocate the model (an op it has no kernel for, or fp16 weights). Runs in a child process: the
    figures are printed by C++ on stderr, and a model TFLM rejects must not take the caller down."""
    done = subprocess.run([sys.executable, "-c", _TFLM_CHILD, str(tflm_site), str(path), str(arena_limit)],
                          capture_output=True, text=True, timeout=300)
    found = dict((k, int(v)) for k, v in _TFLM_LINE.findall(done.stderr + done.stdout))
    if done.returncode != 0 or set(found) != {"head", "tail"}:
        return None
    return {"head": found["head"], "tail": found["tail"], "total": found["head"] + found["tail"]}
