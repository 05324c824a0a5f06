"""Parsed manifests remembered on disk, keyed by their bytes: what ``EdgeModel.load`` reads.

Parsing and validating a manifest costs 0.2-0.4 ms (JSON numbers, ~60 frozen dataclasses and their
checks): on a small model that is more than the interpreter's own load. The same bytes always parse to
the same Manifest, so the first load on a machine parses and stores the result as a pickle; later loads
read it back in ~30 us. The key is the sha256 of the manifest's bytes and of the code that parses them
(edgekit's version, the parser modules' source, Python's version): a new rule in a ``_check`` is
applied again, never skipped by an old entry.

The pickle is read by an unpickler that builds only the manifest's own dataclasses and plain
values (no other class, no function: no code runs from the file). The cache folder is trusted like
the probe verdicts and the guard kernel beside it (a user who can write there can change those
too); a signed load (``trusted_keys``) never uses it: it parses exactly the bytes that verified.

Example:
    >>> m = find("digits-int8.tflite")   # doctest: +SKIP
    >>> m.input("image").dtype           # doctest: +SKIP
    'int8'
"""

from __future__ import annotations

import hashlib
import io
import pickle
import sys
from pathlib import Path

from . import __version__, fsutil, manifest, recipes
from .manifest import MANIFEST_MAX_BYTES, Manifest, manifest_bytes, manifest_path_for

_PROTOCOL = 5
KEEP = 64  # entries (4-40 KB each): a device that swaps models for years keeps the recent ones only
_classes: dict[tuple[str, str], type] = {}
_code: list[bytes] = []  # the parser's fingerprint, worked out once per process


def _fingerprint() -> bytes:
    if not _code:
        h = hashlib.sha256(f"{__version__} {sys.version_info[:3]} {_PROTOCOL}".encode())
        for mod in (manifest, recipes, fsutil):  # the classes, their checks, the JSON reader's limits
            try:
                h.update(Path(mod.__file__).read_bytes())
            except (OSError, TypeError):  # no source to hash (a frozen build): never reuse an entry
                return b""
        _code.append(h.digest())
    return _code[0]


class _Unpickler(pickle.Unpickler):
    """Builds the manifest's dataclasses and nothing else."""

    def find_class(self, module: str, name: str):
        if not _classes:
            for mod in (manifest, recipes):
                _classes.update({(mod.__name__, n): c for n, c in vars(mod).items()
                                 if isinstance(c, type) and c.__module__ == mod.__name__
                                 and "__dataclass_fields__" in vars(c)})
        cls = _classes.get((module, name))
        if cls is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not a manifest class")
        return cls


def parse(data: bytes, label: str) -> Manifest:
    """``Manifest.from_bytes(data, label)``, from the cache when these bytes were parsed before on this machine.

    Example: ``parse(Path("m.manifest.json").read_bytes(), "m.manifest.json")``
    """
    code = _fingerprint()
    if not code or len(data) > MANIFEST_MAX_BYTES:
        return Manifest.from_bytes(data, label)
    path = fsutil.cache_dir("manifests") / hashlib.sha256(code + data).hexdigest()
    try:
        with open(path, "rb") as fh:
            m = _Unpickler(fh).load()
        if type(m) is Manifest:
            return m
    except Exception:  # noqa: BLE001 - absent, or not what this cache writes: a cache never fails a load
        pass
    m = Manifest.from_bytes(data, label)  # invalid bytes raise here, and nothing is stored
    try:
        blob = pickle.dumps(m, _PROTOCOL)
        _Unpickler(io.BytesIO(blob)).load()  # a class this reader refuses (a new section's) is never stored
        fsutil.atomic_write_bytes(path, blob)
        fsutil.keep_newest(path.parent, KEEP, "[0-9a-f]*")  # after a write only; not others' .tmp files
    except (OSError, pickle.UnpicklingError):
        pass  # a read-only cache, or a manifest class outside the allowed modules: every load parses
    return m


def find(model_path: str | Path) -> Manifest | None:
    """``Manifest.find`` through the cache: the manifest next to ``model_path``, or None when there is none."""
    p = manifest_path_for(model_path)
    return parse(manifest_bytes(p), str(p)) if p.exists() else None
