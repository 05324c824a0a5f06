"""Build a release bundle: check, profile and audit one model for one target, into one signed folder.

The folder holds the model and its manifest as they are, each report (JSON and HTML), the CycloneDX
ML-BOM and ``summary.json`` (the gates, the files and their sha256); ``release.sig`` signs every
other file together (OpenSSF model-signing, edgekit/signing.py), with the public key beside it.
It is built in a temporary folder next to OUT and renamed into place: never half a bundle.

Example:
    >>> s = build_release("digits-int8.tflite", "raspberry-pi-4", "release/", key="key.pem")   # doctest: +SKIP
    >>> [(g["name"], g["status"]) for g in s["gates"]]                                          # doctest: +SKIP
    [('check', 'pass'), ('budget', 'not measured'), ('audit', 'not run')]
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import CheckFailed, UsageError
from ..fsutil import _umask, atomic_write_bytes, atomic_write_text, read_bytes, sha256_bytes
from .layout import (AUDIT_HTML, AUDIT_JSON, BOM, CHECK_HTML, CHECK_JSON, PROFILE_HTML, PROFILE_JSON, PUBLIC_KEY, SCHEMA,
                     SIGNATURE, SUMMARY, bundle_files)


def _gate(name: str, status: str, detail: str) -> dict[str, str]:
    """status: pass | fail | not measured (timings not from the target) | not run."""
    return {"name": name, "status": status, "detail": detail}


def _check(model: Path, target: str, work: Path) -> tuple[dict[str, Any], dict[str, str]]:
    from ..targets import check_model

    checked = check_model(model, target)
    report = checked.to_dict()
    atomic_write_text(work / CHECK_JSON, json.dumps(report, indent=1) + "\n")
    atomic_write_text(work / CHECK_HTML, f"<!doctype html><html><head><meta charset='utf-8'><title>check</title>"
                      f"</head><body><pre>{html.escape(checked.render())}</pre></body></html>\n")
    errors = [f["message"] for f in report["findings"] if f["severity"] == "error"]
    return report, _gate("check", "pass" if report["compatible"] else "fail",
                         "; ".join(errors) or f"compatible with {target}")


def _profile(model: Path, target: str, work: Path, *, host: str | None, ssh: dict[str, Any] | None,
             runs: int, threads: Any) -> tuple[dict[str, Any], dict[str, str]]:
    from ..devices import load_profile
    from ..profile import dispatch
    from ..profile.render import verdict

    outcome = dispatch.run(model, runs=runs, threads=threads or load_profile(target).threads,
                           hosts=[host] if host else None, ssh=ssh)
    dispatch.enforce(dispatch.Outcome([], outcome.failures))  # a host that failed: no evidence to bundle
    doc = outcome.docs[0]
    dispatch.publish([doc], target=target, json_out=work / PROFILE_JSON, report_out=work / PROFILE_HTML)
    budget = doc["budget"]
    if budget is None:
        return doc, _gate("budget", "not run", f"{target} states no latency or memory budget")
    if budget["passed"] is None:  # another machine's or an emulator's timings: never device evidence
        return doc, _gate("budget", "not measured", budget["not_measured"])
    failures = "; ".join(f"{r['threads']} thread(s): {', '.join(r['failures'])}" for r in budget["rows"]
                         if not r["passed"])
    return doc, _gate("budget", "pass" if budget["passed"] else "fail", failures or verdict(budget))


def _audit(model: Path, target: str, work: Path, eval_data: Path | None,
           source: Path | None) -> tuple[dict[str, Any] | None, dict[str, str]]:
    if eval_data is None or source is None:
        return None, _gate("audit", "not run", "needs --eval and --source")
    from ..audit.run import run_audit
    from ..audit.report_html import write_report
    from ..audit.schema import to_json

    doc = run_audit(model, source, eval_data, target=target, profile=work / PROFILE_JSON)
    atomic_write_text(work / AUDIT_JSON, to_json(doc))
    write_report(doc, work / AUDIT_HTML)
    failed = doc["verdict"].get("failed") or []
    return doc, _gate("audit", "pass" if doc["verdict"]["passed"] else "fail",
                      ", ".join(failed) or "every check passed")


def _tools() -> dict[str, str]:
    """The audit's list of tool versions (no TensorFlow import), plus the signer."""
    import importlib.metadata as md

    from ..audit.pipeline import _audit_tools

    out = _audit_tools()
    try:
        out["model-signing"] = md.version("model-signing")
    except md.PackageNotFoundError:
        pass
    return out


def _public_key(key: Path) -> bytes:
    """The PEM public key of an EC private key (shipped in the bundle: whoever holds it can check integrity)."""
    from cryptography.hazmat.primitives import serialization

    try:
        private = serialization.load_pem_private_key(read_bytes(key, UsageError, "private key"), password=None)
    except (ValueError, TypeError) as err:
        raise UsageError(f"{key}: not an unencrypted PEM private key ({err})") from None
    return private.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_out(out: Path, force: bool) -> None:
    """OUT must be new, an empty folder, or (with --force) an earlier bundle: never a folder of other files."""
    from .layout import is_bundle

    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not (force and is_bundle(out)):
        raise UsageError(f"{out}: exists and is not an empty folder; "
                         + ("--force replaces only a release bundle: give another -o" if force
                            else "pass --force to replace an earlier bundle, or another -o"))


def build_release(model: str | Path, target: str, out: str | Path, *, host: str | None = None,
                  ssh: dict[str, Any] | None = None, eval_data: str | Path | None = None,
                  source: str | Path | None = None, key: str | Path | None = None, runs: int = 200,
                  threads: Any = None, force: bool = False) -> dict[str, Any]:
    """Write the bundle for ``model`` judged against ``target`` into ``out``; returns its summary.

    ``key``: EC private key (PEM) that signs the bundle (unsigned without it: a store that
    requires evidence refuses it). Raise nothing for a failed gate: see ``enforce``.
    """
    from ..devices import load_profile
    from ..manifest import Manifest, manifest_bytes, manifest_path_for
    from ..profile.profiler import check_model
    from .bom import build_bom

    model, out = check_model(model), Path(out)
    prof = load_profile(target)
    manifest = Manifest.find(model)
    if manifest is None:
        raise UsageError(f"{model}: no manifest next to it; a release needs one (edgekit convert writes it, "
                         "edgekit adopt writes one for a published model)")
    _check_out(out, force)
    if key is not None and not Path(key).is_file():
        raise UsageError(f"{key}: private key not found")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    os.chmod(work, 0o777 & ~_umask())  # mkdtemp makes it 0700: the bundle is a folder like any other
    try:
        model_data = read_bytes(model, UsageError, "model file")
        man_path = manifest_path_for(model)
        atomic_write_bytes(work / model.name, model_data)
        atomic_write_bytes(work / man_path.name, manifest_bytes(man_path))
        check, g_check = _check(model, prof.name, work)
        profile_doc, g_budget = _profile(model, prof.name, work, host=host, ssh=ssh, runs=runs, threads=threads)
        audit, g_audit = _audit(model, prof.name, work, Path(eval_data) if eval_data else None,
                                Path(source) if source else None)
        gates = [g_check, g_budget, g_audit]
        bom = build_bom(manifest, model_data, model.name, target=prof, check=check, profile_doc=profile_doc,
                        audit=audit, gates=gates, tools=_tools())
        atomic_write_text(work / BOM, json.dumps(bom, indent=1) + "\n")
        if key is not None:
            from ..signing import sign

            atomic_write_bytes(work / PUBLIC_KEY, _public_key(Path(key)))
            # the model's own signature too: a store that trusts the key checks it as for any signed model
            sign(work / model.name, key, manifest=work / man_path.name)
        summary = _summary(model.name, man_path.name, manifest, prof, profile_doc, gates, work, signed=key is not None)
        atomic_write_text(work / SUMMARY, json.dumps(summary, indent=1) + "\n")
        if key is not None:
            from ..signing import sign_files

            sign_files(bundle_files(work), key, work / SIGNATURE, label="release")
        _replace(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _summary(model_file: str, manifest_file: str, manifest, prof, profile_doc: dict[str, Any],
             gates: list[dict[str, str]], work: Path, *, signed: bool) -> dict[str, Any]:
    """What a store and a person read first: the gates, where the numbers come from, every file's sha256."""
    failed = [g["name"] for g in gates if g["status"] == "fail"]
    budget = profile_doc.get("budget") or {}
    return {
        "schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "edgekit": __version__,
        "model": {"file": model_file, "sha256": manifest.model.sha256, "size_bytes": manifest.model.size_bytes},
        "manifest": manifest_file, "target": prof.name,
        "measured_on": {"device": profile_doc.get("device"), "arch": (profile_doc.get("machine") or {}).get("arch"),
                        "cpu_model": (profile_doc.get("machine") or {}).get("cpu_model"),
                        "emulated": (profile_doc.get("machine") or {}).get("emulated")},
        "device_evidence": budget.get("passed") is not None,  # timings from the target itself
        "gates": gates, "passed": not failed, "failed": failed, "signed": signed,
        "files": {p.name: sha256_bytes(p.read_bytes()) for p in sorted(work.iterdir())},
    }


def _replace(work: Path, out: Path) -> None:
    """Put the finished bundle at ``out`` (an old one is moved aside first, then removed)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(work, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def enforce(summary: dict[str, Any]) -> None:
    """CheckFailed (exit 1) listing each failed gate with its reason."""
    if summary["passed"]:
        return
    parts = [f"{g['name']} ({g['detail']})" for g in summary["gates"] if g["status"] == "fail"]
    raise CheckFailed(f"release gates failed: {'; '.join(parts)}; the bundle was written, and a store that "
                      "requires evidence will refuse it")
