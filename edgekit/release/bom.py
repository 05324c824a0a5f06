"""The CycloneDX 1.6 ML-BOM of a release: the model, its model card, its data sets, the tools and the target.

cyclonedx-python-lib's model card is a stub (FACTS.md), so the document is written here as plain JSON,
field for field from the CycloneDX 1.6 JSON schema; tests/release validates it against that schema.

Example:
    >>> bom = build_bom(manifest, model_bytes, profile=load_profile("raspberry-pi-4"), check=..., ...)  # doctest: +SKIP
    >>> bom["components"][0]["type"]                                                                    # doctest: +SKIP
    'machine-learning-model'
"""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

from ..fsutil import sha256_file

SPEC_VERSION = "1.6"


def _hashes(data: bytes) -> list[dict[str, str]]:
    return [{"alg": "SHA-256", "content": hashlib.sha256(data).hexdigest()},
            {"alg": "SHA-512", "content": hashlib.sha512(data).hexdigest()}]


def _props(**values: Any) -> list[dict[str, str]]:
    """CycloneDX properties (strings only), in the edgekit namespace; None values left out."""
    return [{"name": f"edgekit:{k}", "value": str(v)} for k, v in values.items() if v is not None]


def _metric(kind: str, value: Any, slice_: str | None = None) -> dict[str, Any]:
    out = {"type": kind, "value": f"{value:.6g}" if isinstance(value, float) else str(value)}
    if slice_:
        out["slice"] = slice_
    return out


def _dataset(ref: str, role: str, name: str, *, sha256: str | None = None, size: int | None = None,
             samples: int | None = None, source: str | None = None, license_: str | None = None,
             samples_sha256: str | None = None) -> dict[str, Any]:
    """A data component: what the model was calibrated or audited on, with what identifies it."""
    comp: dict[str, Any] = {"type": "data", "bom-ref": ref, "name": name,
                            "data": [{"type": "dataset", "name": name, "description": f"{role} data"}]}
    if sha256:
        comp["hashes"] = [{"alg": "SHA-256", "content": sha256}]
    if license_:
        comp["licenses"] = [{"license": {"name": license_}}]
    comp["properties"] = _props(role=role, source=source or "not declared", file_bytes=size, samples=samples,
                                samples_sha256=samples_sha256, license=None if license_ else "not declared")
    return comp


def datasets(manifest, audit: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The audit's data sets (hashed as it used them), and the manifest's calibration set when the audit had none."""
    out = []
    for i, d in enumerate(((audit or {}).get("governance") or {}).get("datasets") or []):
        out.append(_dataset(f"dataset-{i}-{d['role']}", d["role"], Path(d.get("path") or d["role"]).name,
                            sha256=d.get("file_sha256"), size=d.get("file_bytes"), samples=d.get("samples"),
                            source=d.get("declared_source") or d.get("path"), license_=d.get("declared_license"),
                            samples_sha256=d.get("samples_sha256")))
    cal = manifest.calibration
    if cal is not None and not any(c["data"][0]["description"] == "calibration data" for c in out):
        path = Path(cal.source) if cal.source and not cal.source.startswith("<") else None
        present = path is not None and path.is_file()  # hashed when the file is still where conversion read it
        out.append(_dataset("dataset-calibration", "calibration", path.name if path else "calibration",
                            sha256=sha256_file(path) if present else None,
                            size=path.stat().st_size if present else None, samples=cal.samples, source=cal.source))
    return out


def _profile_metrics(profile_doc: dict[str, Any]) -> list[dict[str, Any]]:
    budget = profile_doc.get("budget") or {}
    where = (profile_doc.get("machine") or {}).get("cpu_model") or "unknown CPU"
    caveat = f" (not measured on the target: {budget['not_measured']})" if budget.get("not_measured") else ""
    out = []
    for r in profile_doc["rows"]:
        at = f"{r['threads']} thread(s) on {where}{caveat}"
        for key in ("p50", "p95"):
            if r["latency_ms"].get(key) is not None:
                out.append(_metric(f"latency {key} (ms)", r["latency_ms"][key], at))
        if r["memory"].get("peak_mb") is not None:
            out.append(_metric("peak memory (MB)", r["memory"]["peak_mb"], at))
    return out


def _audit_metrics(audit: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [_metric(c["name"], c["value"], f"{c['op']} {c['threshold']:g} ({c['unit']}): "
                    f"{'passed' if c['passed'] else 'failed'}") for c in (audit or {}).get("checks", [])
            if c.get("value") is not None]


def _considerations(check: dict[str, Any], profile_doc: dict[str, Any], audit: dict[str, Any] | None,
                    gates: list[dict[str, Any]]) -> dict[str, Any]:
    limits = [f"{f['severity']}: {f['message']}" for f in check["findings"] if f["severity"] != "info"]
    limits += [f"{g['name']}: {g['status']}: {g['detail']}" for g in gates if g["status"] != "pass"]
    trade = []
    if audit:
        trade += [f"{c['name']} {c['value']:.4g} {c['unit']} ({'passed' if c['passed'] else 'failed'} "
                  f"{c['op']} {c['threshold']:g})" for c in audit["checks"] if c.get("value") is not None
                  and not c["passed"]]
    return {"technicalLimitations": limits or ["none found by edgekit check, profile and audit"],
            "performanceTradeoffs": trade or [f"quantized model: see the accuracy figures; file "
                                              f"{profile_doc['model'].get('size_bytes')} bytes"]}


def build_bom(manifest, model_data: bytes, model_file: str, *, target, check: dict[str, Any],
              profile_doc: dict[str, Any], audit: dict[str, Any] | None, gates: list[dict[str, Any]],
              tools: dict[str, str]) -> dict[str, Any]:
    """The BOM as a JSON-ready dict (``target``: the DeviceProfile the release was judged against)."""
    data = datasets(manifest, audit)
    acc = manifest.accuracy.output() if manifest.accuracy else None
    metrics = [_metric(k, getattr(acc, k), "at conversion, on the eval data") for k in
               ("top1_converted", "agreement") if acc is not None and getattr(acc, k) is not None]
    card = {
        "bom-ref": "model-card",
        "modelParameters": {
            "task": manifest.task,
            "architectureFamily": "tflite",
            "modelArchitecture": manifest.recipe.name if manifest.recipe else "adopted",
            "datasets": [{"ref": d["bom-ref"]} for d in data],
            "inputs": [{"format": f"{t.name}: {t.dtype} {list(t.shape)}"} for t in manifest.inputs],
            "outputs": [{"format": f"{t.name}: {t.dtype} {list(t.shape)}"} for t in manifest.outputs],
        },
        "quantitativeAnalysis": {"performanceMetrics": metrics + _audit_metrics(audit) + _profile_metrics(profile_doc)},
        "considerations": _considerations(check, profile_doc, audit, gates),
    }
    model = {"type": "machine-learning-model", "bom-ref": "model", "name": model_file,
             "version": manifest.model.sha256[:12], "hashes": _hashes(model_data), "modelCard": card,
             "properties": _props(manifest_schema=manifest.schema, recipe=manifest.recipe.name if manifest.recipe
                                  else None, created=manifest.provenance.created, target=target.name)}
    device = {"type": "device", "bom-ref": "target", "name": target.name, "description": target.description,
              "properties": _props(arch=target.arch, cores=target.cores, memory_mb=target.memory_mb,
                                   interpreter=target.interpreter, accelerator=target.accelerator,
                                   measured_on=_measured_on(profile_doc))}
    return {
        "bomFormat": "CycloneDX", "specVersion": SPEC_VERSION, "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "tools": {"components": [{"type": "application", "name": n, "version": v}
                                              for n, v in sorted(tools.items())]},
                     "component": {"type": "machine-learning-model", "bom-ref": "release", "name": model_file,
                                   "version": manifest.model.sha256[:12]}},
        "components": [model, *data, device],
        "dependencies": [{"ref": "release", "dependsOn": ["model"]},
                         {"ref": "model", "dependsOn": [d["bom-ref"] for d in data] + ["target"]}],
    }


def _measured_on(profile_doc: dict[str, Any]) -> str:
    m = profile_doc.get("machine") or {}
    where = f"{m.get('arch')} {m.get('cpu_model') or ''}".strip()
    return f"{where} (emulated: {m['emulated']})" if m.get("emulated") else where
