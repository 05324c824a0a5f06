"""Signed models: a model and its manifest signed together (OpenSSF model-signing, EC key pair, offline).

A sha256 in the manifest proves nothing when whoever changes the model can change the manifest too.
A signature over both, checked against public keys the device trusts, does. The signed unit is a
folder holding exactly ``model.tflite`` and ``model.manifest.json`` (the names in a store object),
whatever the files are called on disk. Signing and verifying hash that unit from bytes in memory
(``_Unit``), never from a folder: the bytes a caller verified are the bytes it then parses and
loads (a file swapped during the check cannot slip in), and nothing is copied to disk (a process
killed mid-check leaves nothing behind). A changed byte in either file is refused, and so is a
signature over any other set of files. The signature (a sigstore bundle, JSON) is written next to
the model as ``<stem>.sig``.

``model-signing`` is an optional extra (``pip install 'edgekit[sign]'``), imported only when used
(its import costs about 0.4 s).

Example:
    >>> sig = sign("digits.tflite", key="key.pem")                       # doctest: +SKIP
    >>> verify("digits.tflite", trusted_keys=["pub.pem"])                # doctest: +SKIP
    'pub.pem'
    >>> data, man = read_unit("digits.tflite")   # read once: verify these bytes, then parse them
    >>> verify("digits.tflite", ["pub.pem"], data=data, manifest_data=man)  # doctest: +SKIP
    'pub.pem'
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Iterable

from .errors import MissingDependencyError, SignatureError, UsageError
from .fsutil import atomic_write_bytes, read_bytes
from .manifest import manifest_path_for

MODEL_NAME = "model.tflite"
MANIFEST_NAME = "model.manifest.json"
SIG_SUFFIX = ".sig"
INSTALL_HINT = "signing needs the model-signing package; install it with: pip install 'edgekit[sign]'"


def signature_path_for(model: str | Path) -> Path:
    """``digits.tflite`` -> ``digits.sig``, ``digits.onnx`` -> ``digits.onnx.sig`` (same folder)."""
    from .manifest import companion_stem

    p = Path(model)
    return p.with_name(companion_stem(p) + SIG_SUFFIX)


def _import(name: str):
    try:
        import importlib

        return importlib.import_module(f"model_signing.{name}")
    except ImportError as err:  # model-signing 1.1.1 also needs pyOpenSSL without declaring it
        raise MissingDependencyError(f"{INSTALL_HINT} ({err})") from None


def read_unit(model: str | Path, manifest: str | Path | None = None) -> tuple[bytes, bytes]:
    """The signed unit's bytes, each file read once: (model bytes, manifest bytes).

    Callers verify these bytes, then parse and load the same bytes (never the paths again).
    Example: ``data, man = read_unit("digits.tflite")``
    """
    return _read(Path(model), "model file"), read_manifest(model, manifest)


def read_manifest(model: str | Path, manifest: str | Path | None = None) -> bytes:
    """The manifest's bytes (next to ``model`` unless given), read once to verify and then parse."""
    return _read(Path(manifest) if manifest else manifest_path_for(model), "manifest")


def _read(path: Path, what: str) -> bytes:
    return read_bytes(path, SignatureError, f"{what}; sign and verify need the model and its manifest")


def _unit_hashing(model_data: bytes, manifest_data: bytes):
    """A model-signing hashing config that hashes the signed unit from memory, as the library would
    hash a folder holding exactly model.tflite and model.manifest.json (file serialization, sha256)."""
    return _files_hashing({MODEL_NAME: model_data, MANIFEST_NAME: manifest_data})


def _files_hashing(files: dict[str, bytes]):
    """The same for any set of files, by relative POSIX name (a release bundle signs all of its files)."""
    hashing, manifest = _import("hashing"), _import("manifest")
    from model_signing._hashing.hashing import Digest  # the digest type has no public name in 1.1

    class _Unit(hashing.Config):
        def hash(self, model_path, *, files_to_hash=None):
            kind = manifest.SerializationType.from_args(
                {"method": "files", "hash_type": "sha256", "allow_symlinks": False})
            items = [manifest.FileManifestItem(path=PurePosixPath(name),
                                               digest=Digest("sha256", hashlib.sha256(data).digest()))
                     for name, data in files.items()]
            return manifest.Manifest(str(model_path), items, kind)

    return _Unit()


def sign(model: str | Path, key: str | Path, *, manifest: str | Path | None = None,
         out: str | Path | None = None, password: str | None = None) -> Path:
    """Sign ``model`` together with its manifest using the EC private key ``key`` (PEM); returns the signature path.

    Example: ``sign("digits.tflite", key="key.pem")`` writes ``digits.sig``.
    """
    model = Path(model)
    manifest = Path(manifest) if manifest else manifest_path_for(model)
    key = _private_key(key)
    out = Path(out) if out else signature_path_for(model)
    model_data, manifest_data = read_unit(model, manifest)
    return sign_files({MODEL_NAME: model_data, MANIFEST_NAME: manifest_data}, key, out, label=model.stem,
                      password=password)


def _private_key(key: str | Path) -> Path:
    key = Path(key)
    if not key.is_file():
        raise UsageError(f"{key}: private key not found; make one with: openssl ecparam -name prime256v1 "
                         f"-genkey -noout -out {key}")
    return key


def sign_files(files: dict[str, bytes], key: str | Path, out: str | Path, *, label: str,
               password: str | None = None) -> Path:
    """Sign a set of files given as ``{relative name: bytes}`` with the EC private key ``key``; writes ``out``.

    Example: ``sign_files({"a.json": b"{}"}, "key.pem", "bundle.sig", label="bundle")``
    """
    key, out = _private_key(key), Path(out)
    signing = _import("signing")
    config = signing.Config().set_hashing_config(_files_hashing(files))
    # the library writes the signature to a path itself: a temporary file beside ``out``, then atomically
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        try:
            config.use_elliptic_key_signer(private_key=key, password=password).sign(label, tmp)
        except (ValueError, TypeError) as err:
            raise UsageError(f"{key}: cannot sign with this key ({_one_line(err)}); it must be an EC "
                             "private key in PEM format") from None
        atomic_write_bytes(out, Path(tmp).read_bytes())
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out


def verify(model: str | Path, trusted_keys: Iterable[str | Path], *, manifest: str | Path | None = None,
           signature: str | Path | None = None, data: bytes | None = None,
           manifest_data: bytes | None = None) -> str:
    """Check that ``model`` and its manifest carry a valid signature by one of ``trusted_keys`` (PEM public keys).

    Returns the key that verified. Raises SignatureError (unsigned, untrusted key, changed model or
    manifest). ``data``: the model bytes the caller read and will load (verified as given).
    Example: ``verify("digits.tflite", ["pub.pem"])``
    """
    model = Path(model)
    keys = [Path(k) for k in trusted_keys]
    if not keys:
        raise UsageError("trusted_keys is empty: give at least one public key (PEM), or None to skip the check")
    for k in keys:
        if not k.is_file():
            raise UsageError(f"{k}: trusted public key not found")
    manifest = Path(manifest) if manifest else manifest_path_for(model)
    signature = Path(signature) if signature else signature_path_for(model)
    if not signature.is_file():
        raise SignatureError(f"{model}: unsigned (no signature {signature.name} next to it), and signed models "
                             "are required here; sign it with: edgekit sign MODEL --key KEY.pem")
    data = _read(model, "model file") if data is None else data
    manifest_data = read_manifest(model, manifest) if manifest_data is None else manifest_data
    problems = _verify_files({MODEL_NAME: data, MANIFEST_NAME: manifest_data}, keys, signature, model.stem)
    if isinstance(problems, str):
        return problems
    raise SignatureError(f"{model}: signature {signature.name} does not verify with any trusted key "
                         f"({'; '.join(problems)}); the model or its manifest changed after signing, "
                         "or it was signed by another key")


def verify_files(files: dict[str, bytes], trusted_keys: Iterable[str | Path], signature: str | Path, *,
                 label: str) -> str:
    """Check a signature from ``sign_files`` over exactly these files; the key that verified, else SignatureError.

    Example: ``verify_files({"a.json": b"{}"}, ["pub.pem"], "bundle.sig", label="bundle")``
    """
    signature = Path(signature)
    if not signature.is_file():
        raise SignatureError(f"{label}: unsigned (no signature {signature.name})")
    problems = _verify_files(files, [Path(k) for k in trusted_keys], signature, label)
    if isinstance(problems, str):
        return problems
    raise SignatureError(f"{label}: signature {signature.name} does not verify with any trusted key "
                         f"({'; '.join(problems)}); a file changed after signing, or another key signed it")


def _verify_files(files: dict[str, bytes], keys: list[Path], signature: Path, label: str) -> str | list[str]:
    """The key that verified, or one problem line per key."""
    verifying = _import("verifying")
    problems = []
    for k in keys:
        try:
            config = verifying.Config().use_elliptic_key_verifier(public_key=k)
            config.set_hashing_config(_files_hashing(files)).verify(label, signature)
            return str(k)
        except Exception as err:  # the library raises ValueError, and others from inside sigstore
            problems.append(f"{k.name}: {_one_line(err)}")
    return problems


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    # the list in the message is repr'd: its quotes may come escaped (\\') when a digest holds a quote
    changed = re.findall(r"Hash mismatch for \\*'([^'\\]+)", text)
    if changed:  # the library's message carries raw digests: name the files instead
        return "signature mismatch: " + ", ".join(changed) + " changed"
    return text if len(text) <= 200 else text[:197] + "..."
