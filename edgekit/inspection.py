"""``edgekit inspect``'s library side: a .tflite's structure, XNNPACK verdict and manifest summary.

The structure comes from the flatbuffer (edgekit.modelinfo, no interpreter). Whether XNNPACK
takes the model is measured: the load probe of edgekit.runtime.safeload loads the bytes in a
child process with the default delegates and reports whether they applied, so a hostile file
cannot crash the caller. With no interpreter installed it says "not checked".

Example:
    >>> doc = inspect_model("digits-int8.tflite")      # doctest: +SKIP
    >>> doc["xnnpack"]["status"]                       # doctest: +SKIP
    'applied'
    >>> print(render_inspect(doc))                     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engine.onnx_info import read_onnx_info, render_onnx
from .engine.onnxrt import is_onnx
from .engine.tflite_info import read_model_info
from .errors import MissingDependencyError, ModelLoadError
from .fsutil import read_bytes


def xnnpack_status(data: bytes) -> dict[str, str]:
    """{"status": applied | not-applied | refused | not-checked, "detail": ...} measured by the load probe."""
    from .engine.tflite import get_backend

    try:
        be = get_backend("ai-edge-litert")
    except MissingDependencyError:
        try:
            be = get_backend("tflite-runtime")
        except MissingDependencyError:
            return {"status": "not-checked", "detail": "no interpreter installed (pip install ai-edge-litert)"}
    from .engine.safeload import verdict

    result = verdict(data, be, None)
    where = f"{be.name} {be.version}"
    if result == "ok":
        return {"status": "applied", "detail": f"{where}: the default XNNPACK delegate prepared the graph"}
    if result == "ok-nodelegates":
        return {"status": "not-applied", "detail": f"{where}: XNNPACK could not prepare the graph; "
                "the builtin kernels run it"}
    return {"status": "refused", "detail": f"{where} refused the model: {result}"}


def manifest_summary(model_path: str | Path) -> dict[str, Any] | None:
    """The manifest's headline facts, or None when no manifest sits next to the model.

    The one place inspect reads the manifest (``Manifest.summary()``); a broken one is reported, not fatal.
    """
    from .errors import ManifestError
    from .manifest import Manifest

    try:
        m = Manifest.find(model_path)
    except ManifestError as err:  # a broken manifest must not hide the model's own facts
        return {"error": str(err)}
    return None if m is None else m.summary()


def inspect_model(path: str | Path, *, xnnpack: bool = True) -> dict[str, Any]:
    """Everything ``edgekit inspect`` shows, as one JSON-ready dict."""
    p = Path(path)
    data = read_bytes(p, ModelLoadError, "model file")  # once: regular files only, size-capped
    if is_onnx(data):  # read with the onnx package: no session, no XNNPACK question
        return {**read_onnx_info(data, str(p)), "manifest": manifest_summary(p)}
    info = read_model_info(data, label=str(p))
    doc: dict[str, Any] = {"model": str(p), **info.to_dict()}
    doc["op_count"] = len(info.ops)
    if xnnpack:
        doc["xnnpack"] = xnnpack_status(data)
    else:
        doc["xnnpack"] = {"status": "not-checked", "detail": "skipped (--no-xnnpack)"}
    doc["manifest"] = manifest_summary(p)
    return doc


def _tensor_line(t: dict[str, Any]) -> str:
    quant = (f" q(scale={t['scale']:.6g}, zp={t['zero_point']})" if t.get("scale") is not None
             else f" q(per-channel x{t['quant_channels']})" if t.get("quant_channels", 0) > 1 else "")
    shape = t["shape_signature"] if any(d < 0 for d in t["shape_signature"]) else t["shape"]
    return f"  {t['name'] or '#' + str(t['index'])}: {list(shape)} {t['dtype']}{quant}"


_WEIGHT_FORMATS = {"float32": "float32", "float16": "float16 (dequantized to float32 at load)",
                   "hybrid": "hybrid dynamic-range (int8 weights, float activations)",
                   "int16x8": "int16x8 (int16 activations, int8 weights)", "int8": "full integer int8",
                   "none": "(no weights)"}


def render_inspect(doc: dict[str, Any]) -> str:
    if doc.get("format") == "onnx":
        return render_onnx(doc) + "\n" + _manifest_line(doc["manifest"])
    kb = 1024
    lines = [f"{doc['model']}: {doc['size_bytes'] / kb:,.1f} KB, {doc['op_count']} ops, "
             f"{doc['tensor_count']} tensors, {doc['subgraph_count']} subgraph(s)",
             f"weights {doc['weight_bytes'] / kb:,.1f} KB {_WEIGHT_FORMATS.get(doc['weight_format'], doc['weight_format'])}, activation arena ~{doc['arena_bytes'] / kb:,.1f} KB "
             f"(planned as TFLite plans it{'; ' + doc['arena_caveat'] if doc.get('arena_caveat') else ''}: docs/arena.md)" + (f", min runtime {doc['min_runtime']}" if doc["min_runtime"] else ""),
             "inputs:"] + [_tensor_line(t) for t in doc["inputs"]] + ["outputs:"] + [_tensor_line(t) for t in doc["outputs"]]
    lines.append("ops (name, version, count):")
    lines += [f"  {h['op']:28} v{h['version']:<3} x{h['count']}" for h in doc["histogram"]]
    if doc["custom_ops"]:
        lines.append("custom ops: " + ", ".join(doc["custom_ops"]))
    if doc["flex_ops"]:
        lines.append("select-TF (Flex) ops: " + ", ".join(doc["flex_ops"]))
    x = doc["xnnpack"]
    lines.append(f"XNNPACK: {x['status']} ({x['detail']})")
    lines.append(_manifest_line(doc["manifest"]))
    return "\n".join(lines)


def _manifest_line(m: dict[str, Any] | None) -> str:
    if m is None:
        return "manifest: none (a published model, or converted without edgekit)"
    if "error" in m:
        return f"manifest: unreadable ({m['error']})"
    scores = m.get("accuracy") or {k: m[k] for k in ("top1_converted", "agreement") if m.get(k) is not None}
    acc = ", ".join(f"{k} {round(v, 4) if isinstance(v, float) else v}" for k, v in scores.items())
    return (f"manifest: recipe {m['recipe']}, task {m['task']}, {m['labels']} labels"
            + (f", target {m['target']}" if m["target"] else "") + (f", compat {m['compat']}" if m["compat"] else "")
            + (f", accuracy: {acc}" if acc else "")
            + (f"\nmanifest: revision {m['revision']} is newer than this edgekit; ignored {', '.join(m['ignored'])}"
               if m.get("ignored") else ""))


__all__ = ["inspect_model", "manifest_summary", "render_inspect", "xnnpack_status"]
