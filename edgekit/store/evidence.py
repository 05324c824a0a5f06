"""A store that requires evidence: only release bundles (edgekit release) get in, for its target, all gates passed.

The requirement is recorded in the index (like trusted keys): once set, a later deploy without the
flag cannot turn it off. A refused deploy records an incident and changes nothing else. The
evidence of each version that came from a bundle is kept as ``evidence/<sha256>.json`` for
``edgekit status``.

Example:
    >>> st = ModelStore("/var/lib/app/models", create=True)                       # doctest: +SKIP
    >>> require(st, "raspberry-pi-4")                                            # doctest: +SKIP
    >>> admit(st, "digits-int8.tflite", None, None)                              # doctest: +SKIP
    Traceback (most recent call last):
    edgekit.release.evidence.EvidenceError: digits-int8.tflite: ... requires evidence: deploy a release bundle ...
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import SignatureError, UsageError
from ..fsutil import atomic_write_text, read_json
from ..signing import signature_path_for
from ..release.evidence import Evidence, EvidenceError, check_bundle
from ..release.layout import is_bundle
from .store import ModelStore


def _folder(st: ModelStore) -> Path:
    return st.root / "evidence"


def policy(st: ModelStore) -> dict[str, Any] | None:
    """``{"required": True, "target": T or None}`` when the store requires evidence, else None."""
    return st.rules()["evidence"]  # also when index.json is lost: the rule is in the history too


def require(st: ModelStore, target: str | None) -> None:
    """From now on only bundles get in (released for ``target`` when given); it cannot be undone by a deploy."""
    with st._writing("require evidence") as idx:
        have = idx.get("evidence") or {}
        if have.get("target") and target and have["target"] != target:
            raise UsageError(f"{st.root}: requires evidence for {have['target']!r}, not {target!r}; "
                             "use another store for another target")
        want = {"required": True, "target": have.get("target") or target}
        if have != want:
            st._commit(dict(idx, evidence=want), {"event": "require-evidence", "target": want["target"]})


def _refuse(st: ModelStore, err: SignatureError, sha: str | None) -> None:
    st.incident("evidence", str(err), "refused", sha, stage="deploy")
    raise err


def admit(st: ModelStore, model: str | Path, manifest: str | Path | None,
          signature: str | Path | None) -> tuple[Path, Path | None, Path | None, Evidence | None]:
    """What to deploy: (model, manifest, signature, evidence). A bundle is checked (signature, target,
    gates) and its model taken from it; a bare model passes only where no evidence is required."""
    pol = policy(st) or {}
    model = Path(model)
    if is_bundle(model):
        if manifest is not None or signature is not None:
            raise UsageError("a bundle holds its manifest and signatures: drop --manifest and --signature")
        try:
            ev = check_bundle(model, target=pol.get("target"), trusted_keys=st.trusted_keys())
        except SignatureError as err:
            _refuse(st, err, None)
        inner = model / ev.model_file
        sig = signature_path_for(inner)  # the model's own signature, when the release was signed
        return inner, model / ev.summary["manifest"], sig if sig.is_file() else None, ev
    if pol.get("required"):
        _refuse(st, EvidenceError(
            f"{model}: {st.root} requires evidence{' for ' + pol['target'] if pol.get('target') else ''}: deploy "
            "a release bundle (edgekit release MODEL --target T --key KEY.pem -o BUNDLE/), not a bare model"), None)
    return model, Path(manifest) if manifest else None, Path(signature) if signature else None, None


def record(st: ModelStore, sha256: str, ev: Evidence) -> None:
    """Keep the bundle's evidence beside the store's versions (what status shows)."""
    atomic_write_text(_folder(st) / f"{sha256}.json", json.dumps({**ev.brief(), "summary": ev.summary}, indent=1))


def for_version(st: ModelStore, sha256: str) -> dict[str, Any] | None:
    path = _folder(st) / f"{sha256}.json"
    if not path.is_file():
        return None
    doc = read_json(path, UsageError, "evidence record")
    return {k: v for k, v in doc.items() if k != "summary"} if isinstance(doc, dict) else None


def annotate(st: ModelStore, doc: dict[str, Any]) -> dict[str, Any]:
    """Add the store's evidence requirement and the active version's evidence to a status document."""
    doc["evidence_required"] = policy(st)
    if doc.get("active"):
        doc["active"]["evidence"] = for_version(st, doc["active"]["sha256"])
    return doc


def render(doc: dict[str, Any]) -> list[str]:
    """Status lines: the requirement and the active version's evidence."""
    lines = []
    pol = doc.get("evidence_required")
    if pol:
        lines.append(f"evidence   required{' for ' + pol['target'] if pol.get('target') else ''}")
    ev = (doc.get("active") or {}).get("evidence")
    if doc.get("active"):
        if ev:
            gates = ", ".join(f"{k} {v}" for k, v in ev["gates"].items())
            where = "on the target" if ev["device_evidence"] else "not on the target"
            lines.append(f"  active's evidence: released for {ev['target']} at {ev['created']}: {gates} "
                         f"(timings {where})")
        else:
            lines.append("  active's evidence: none (deployed as a bare model)")
    return lines
