"""Semantically hostile .tflite files for the runtime and targets tests (issue 15, item 9).

Each is a real converted model with one index edited by ai_edge_litert.tools.flatbuffer_utils:
a valid flatbuffer whose meaning the interpreter does not check (FACTS.md: an operator output
of -1 crashes it), so only edgekit's structural validation stands between it and a crash.
"""

from __future__ import annotations

from pathlib import Path


def hostile_variants(src: Path, out: Path) -> dict[str, Path]:
    """The real model with one index edited (ai_edge_litert.tools.flatbuffer_utils): each is a
    valid flatbuffer that the interpreter does not check the meaning of."""
    from ai_edge_litert.tools import flatbuffer_utils as fu

    def edit(name: str, change) -> Path:
        model = fu.read_model(str(src))
        change(model, model.subgraphs[0])
        path = out / f"{name}.tflite"
        fu.write_model(model, str(path))
        return path

    def constant(g) -> int:  # a tensor that holds weights (buffer > 0)
        return next(i for i, t in enumerate(g.tensors) if t.buffer > 0)

    return {
        "op-output-minus-1": edit("op-output-minus-1", lambda m, g: g.operators[0].outputs.__setitem__(0, -1)),
        "op-input-out-of-range": edit("op-input-out-of-range",
                                      lambda m, g: g.operators[1].inputs.__setitem__(0, len(g.tensors) + 7)),
        "buffer-out-of-range": edit("buffer-out-of-range",
                                    lambda m, g: setattr(g.tensors[constant(g)], "buffer", len(m.buffers) + 7)),
    }
