"""The file names of a release bundle and how to read one (shared by the builder and the store that checks bundles)."""

from __future__ import annotations

from pathlib import Path

SCHEMA = "edgekit.release/1"
SUMMARY = "summary.json"
BOM = "bom.cdx.json"
CHECK_JSON = "check.json"
CHECK_HTML = "check.html"
PROFILE_JSON = "profile.json"
PROFILE_HTML = "profile.html"
AUDIT_JSON = "audit.json"
AUDIT_HTML = "audit.html"
SIGNATURE = "release.sig"  # signs every other file of the folder together
PUBLIC_KEY = "release.pub.pem"  # the signer's public key: integrity for anyone, trust only if the store trusts it


def is_bundle(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / SUMMARY).is_file()


def bundle_files(folder: Path) -> dict[str, bytes]:
    """Every file of a bundle but its signature, by name, each read once (a folder inside is refused)."""
    from ..errors import SignatureError
    from ..fsutil import read_bytes

    files = {}
    for p in sorted(folder.iterdir()):
        if p.name == SIGNATURE:
            continue
        files[p.name] = read_bytes(p, SignatureError, "bundle file")
    return files
