"""Read and check a release bundle before a store takes its model: signature, target, gates. No TensorFlow.

Each file is read once; the bytes that verify are the bytes parsed and stored (a file swapped
during the check cannot slip in). The signature is checked with the store's trusted keys when it
has any, else with the public key in the bundle (that proves no file changed after signing,
not who signed).

Example:
    >>> ev = check_bundle("release/", target="raspberry-pi-4", trusted_keys=[])   # doctest: +SKIP
    >>> ev.model_file, ev.summary["passed"]                                      # doctest: +SKIP
    ('digits-int8.tflite', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SignatureError, UsageError
from ..fsutil import parse_json, sha256_bytes
from .layout import PUBLIC_KEY, SCHEMA, SIGNATURE, SUMMARY, is_bundle


class EvidenceError(SignatureError):
    """A bundle a store that requires evidence refuses: unsigned, changed, for another target, a failed gate."""


@dataclass(frozen=True)
class Evidence:
    folder: Path
    files: dict[str, bytes]  # every file but the signature, as verified
    summary: dict[str, Any]

    @property
    def model_file(self) -> str:
        return self.summary["model"]["file"]

    @property
    def model(self) -> bytes:
        return self.files[self.model_file]

    @property
    def manifest(self) -> bytes:
        return self.files[self.summary["manifest"]]

    def brief(self) -> dict[str, Any]:
        """What the store records and ``edgekit status`` shows."""
        s = self.summary
        return {"bundle": str(self.folder), "target": s["target"], "passed": s["passed"],
                "device_evidence": s["device_evidence"], "created": s["created"],
                "gates": {g["name"]: g["status"] for g in s["gates"]}}


def _verify(folder: Path, files: dict[str, bytes], trusted_keys: list[Path]) -> None:
    from ..signing import verify_files

    if not (folder / SIGNATURE).is_file():
        raise EvidenceError(f"{folder}: unsigned bundle (no {SIGNATURE}); build it with edgekit release --key KEY.pem")
    if trusted_keys:
        verify_files(files, trusted_keys, folder / SIGNATURE, label=str(folder))
        return
    if PUBLIC_KEY not in files:
        raise EvidenceError(f"{folder}: no {PUBLIC_KEY} to check the signature with, and the store trusts no key")
    # the library reads the key from its path: integrity only (whoever changes files can re-sign them all),
    # so a key swapped between the two reads changes nothing that a trusted key would have protected
    verify_files(files, [folder / PUBLIC_KEY], folder / SIGNATURE, label=str(folder))


def _summary(folder: Path, files: dict[str, bytes]) -> dict[str, Any]:
    s = parse_json(files[SUMMARY], folder / SUMMARY, EvidenceError, "release summary")
    if not isinstance(s, dict) or s.get("schema") != SCHEMA:
        raise EvidenceError(f"{folder / SUMMARY}: not an {SCHEMA} summary")
    model, listed = s.get("model"), s.get("files")
    if not (isinstance(model, dict) and isinstance(model.get("file"), str) and isinstance(listed, dict)
            and s.get("manifest") in files and model["file"] in files):
        raise EvidenceError(f"{folder / SUMMARY}: names no model and manifest of the bundle")
    for name, sha in listed.items():  # the summary's own list agrees with what was signed
        if name not in files or sha256_bytes(files[name]) != sha:
            raise EvidenceError(f"{folder}: {name} is not the file the summary lists")
    return s


def check_bundle(folder: str | Path, *, target: str | None, trusted_keys: list[Path]) -> Evidence:
    """The bundle's evidence, or EvidenceError (one line) when a store requiring evidence must refuse it."""
    from .layout import bundle_files

    folder = Path(folder)
    if not is_bundle(folder):
        raise UsageError(f"{folder}: not a release bundle (no {SUMMARY}); build one with edgekit release")
    files = bundle_files(folder)
    _verify(folder, files, trusted_keys)
    s = _summary(folder, files)
    if target and s.get("target") != target:
        raise EvidenceError(f"{folder}: a bundle for {s.get('target')!r}, and this store requires evidence "
                            f"for {target!r}; release it with --target {target}")
    if not s.get("passed"):
        raise EvidenceError(f"{folder}: release gates failed ({', '.join(map(str, s.get('failed') or []))}); "
                            "fix them and release again")
    return Evidence(folder, files, s)
