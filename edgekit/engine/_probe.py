"""The probe process: load, allocate and invoke model bytes, so a crash happens here.

Run by safeload: ``python -m edgekit.engine._probe BACKEND DELEGATES [SPEC] < model.tflite``
(BACKEND "onnxruntime" for an ONNX model: open_checked picks the engine by the bytes).
SPEC (JSON from ``safeload.probe_spec``): the app's thread count, input shapes to resize to
and per-channel calibration-like values per input name. The probe always runs zeros at the
model's own shapes; then, when SPEC says so, zeros at the new shapes and the calibration-like
input. Exit 0: loaded and ran; exit 3: refused on zeros, with the reason on stdout. An
exception on the extra runs is safe in the parent's process too (the runtime's policy handles
it there), so only a signal death or a hang refuses them. Imports only numpy and the
interpreter package (or onnxruntime).
"""

from __future__ import annotations

import json
import sys


def _extra_runs(session, spec: dict) -> None:
    import numpy as np

    from edgekit.quant import Quantizer

    ins = session.inputs
    shapes = spec.get("shapes")
    if shapes:
        session.resize(shapes)
        session.run([np.zeros(shape, t.dtype) for t, shape in zip(ins, shapes)])
    fill = spec.get("fill") or {}
    if not any(t.name in fill or t.tensor_name in fill for t in ins):
        return
    feeds = []
    for t, shape in zip(ins, session.current_shapes()):
        values = fill.get(t.name) or fill.get(t.tensor_name)
        x = np.zeros(shape, np.float32)
        if values:
            v = np.asarray(values, np.float32)
            x[...] = v if shape and v.size == shape[-1] else float(v.mean())
        if t.quantized:
            x = Quantizer(t.scale, t.zero_point, t.dtype)(x)
        feeds.append(x.astype(t.dtype))
    session.run(feeds)


def _session_memory_refusal(before: int, max_mb: float | None) -> str | None:
    """ONNX Runtime has no arena to estimate before it allocates (TFLite's check_memory): the probe
    measures what the session took instead (peak resident memory over what the process held before
    creating it), here, where a hostile graph can only exhaust this process. The peak is VmHWM, not
    getrusage's ru_maxrss: Linux carries that across exec from the parent's peak (a probe started by
    a 1.7 GB pytest read 1.7 GB)."""
    from edgekit.engine.safeload import _size, memory_limit, proc_bytes

    used = (proc_bytes("/proc/self/status", "VmHWM:") or 0) - before
    limit, where = memory_limit(max_mb)
    if limit is None or used <= limit:
        return None
    return (f"its session took ~{_size(used)} (peak, measured by the load probe), over the {_size(limit)} "
            f"limit ({where})")


def main() -> int:
    from edgekit.errors import EdgekitError
    from edgekit.engine.safeload import check_memory, check_structure, open_checked, proc_bytes

    backend = None if sys.argv[1] in ("auto", "onnxruntime") else sys.argv[1]
    delegates = {"auto": None, "on": True, "off": False}[sys.argv[2]]
    spec = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    data = sys.stdin.buffer.read()
    try:
        # Here too, not only in the parent: inspect runs the probe on files nothing has checked.
        check_memory(check_structure(data, "<bytes>"), "<bytes>", spec.get("max_mb"))
        before = proc_bytes("/proc/self/status", "VmRSS:") or 0
        session = open_checked(data, num_threads=spec.get("threads"), backend=backend, delegates=delegates,
                               load=spec.get("load"))
    except EdgekitError as err:
        print(str(err).replace("<bytes>: ", ""))
        return 3
    except Exception as err:  # anything else the interpreter raises on a bad graph
        print(f"{type(err).__name__}: {' '.join(str(err).split())}"[:300])
        return 3
    try:
        _extra_runs(session, spec)
        note = ""
    except Exception as err:  # an error, not a crash: the parent may run this safely
        note = f" (raised on the extra run: {type(err).__name__})"
    if sys.argv[1] == "onnxruntime" and before:
        refusal = _session_memory_refusal(before, spec.get("max_mb"))
        if refusal:
            print(refusal)
            return 3
    print(("ok" if session.default_delegates else "ok-nodelegates") + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
