"""Signed models: a model and its manifest signed together (OpenSSF model-signing, EC key pair, offline).

A sha256 in the manifest proves nothing when whoever changes the model can change the manifest too.
A signature over both, checked against public keys the device trusts, does. The signed unit is a
folder holding exactly ``model.tflite`` and ``model.manifest.json`` (the names in a store object),
whatever the files are called on disk: signing and verifying build that folder from hard links (or
copies) in a temporary place, so a changed byte in either file, an extra file or a missing one is
refused. The signature (a sigstore bundle, JSON) is written next to the model as ``<stem>.sig``.

``model-signing`` is an optional extra (``pip install 'edgekit[sign]'``), imported only when used
(its import costs about 0.4 s).

Example:
    >>> sig = sign("digits.tflite", key="key.pem")                       # doctest: +SKIP
    >>> verify("digits.tflite", trusted_keys=["pub.pem"])                # doctest: +SKIP
    'pub.pem'
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from .errors import MissingDependencyError, SignatureError, UsageError
from .fsutil import atomic_write_bytes
from .manifest import manifest_path_for

MODEL_NAME = "model.tflite"
MANIFEST_NAME = "model.manifest.json"
SIG_SUFFIX = ".sig"
INSTALL_HINT = "signing needs the model-signing package; install it with: pip install 'edgekit[sign]'"


def signature_path_for(model: str | Path) -> Path:
    """``digits.tflite`` -> ``digits.sig`` (same folder)."""
    p = Path(model)
    return p.with_name(p.stem + SIG_SUFFIX)


def _import(name: str):
    try:
        import importlib

        return importlib.import_module(f"model_signing.{name}")
    except ImportError as err:  # model-signing 1.1.1 also needs pyOpenSSL without declaring it
        raise MissingDependencyError(f"{INSTALL_HINT} ({err})") from None


@contextlib.contextmanager
def _payload(model: Path, manifest: Path, *, data: bytes | None = None) -> Iterator[Path]:
    """A temporary folder holding exactly the signed unit; ``data``: the model bytes already read."""
    for p, what in ((model, "model file"), (manifest, "manifest")):
        if data is not None and p is model:
            continue
        if not p.is_file():
            raise SignatureError(f"{p}: {what} not found; sign and verify need the model and its manifest")
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-signed-"))
    try:
        targets = [(tmp / MODEL_NAME, model), (tmp / MANIFEST_NAME, manifest)]
        for dest, src in targets:
            if data is not None and src is model:
                dest.write_bytes(data)  # exactly the bytes the caller will load, not a second read
                continue
            try:
                os.link(src, dest)  # same file system: no copy
            except OSError:
                shutil.copyfile(src, dest)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sign(model: str | Path, key: str | Path, *, manifest: str | Path | None = None,
         out: str | Path | None = None, password: str | None = None) -> Path:
    """Sign ``model`` together with its manifest using the EC private key ``key`` (PEM); returns the signature path.

    Example: ``sign("digits.tflite", key="key.pem")`` writes ``digits.sig``.
    """
    model = Path(model)
    manifest = Path(manifest) if manifest else manifest_path_for(model)
    key = Path(key)
    if not key.is_file():
        raise UsageError(f"{key}: private key not found; make one with: openssl ecparam -name prime256v1 "
                         f"-genkey -noout -out {key}")
    out = Path(out) if out else signature_path_for(model)
    signing = _import("signing")
    with _payload(model, manifest) as folder:
        tmp_sig = folder.parent / (folder.name + SIG_SUFFIX)
        try:
            signing.Config().use_elliptic_key_signer(private_key=key, password=password).sign(folder, tmp_sig)
        except (ValueError, TypeError) as err:
            raise UsageError(f"{key}: cannot sign with this key ({_one_line(err)}); it must be an EC "
                             "private key in PEM format") from None
        try:
            data = tmp_sig.read_bytes()
        finally:
            tmp_sig.unlink(missing_ok=True)
    atomic_write_bytes(out, data)
    return out


def verify(model: str | Path, trusted_keys: Iterable[str | Path], *, manifest: str | Path | None = None,
           signature: str | Path | None = None, data: bytes | None = None) -> str:
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
    verifying = _import("verifying")
    problems = []
    with _payload(model, manifest, data=data) as folder:
        for k in keys:
            try:
                verifying.Config().use_elliptic_key_verifier(public_key=k).verify(folder, signature)
                return str(k)
            except Exception as err:  # the library raises ValueError, and others from inside sigstore
                problems.append(f"{k.name}: {_one_line(err)}")
    raise SignatureError(f"{model}: signature {signature.name} does not verify with any trusted key "
                         f"({'; '.join(problems)}); the model or its manifest changed after signing, "
                         "or it was signed by another key")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    # the list in the message is repr'd: its quotes may come escaped (\\') when a digest holds a quote
    changed = re.findall(r"Hash mismatch for \\*'([^'\\]+)", text)
    if changed:  # the library's message carries raw digests: name the files instead
        return "signature mismatch: " + ", ".join(changed) + " changed"
    return text if len(text) <= 200 else text[:197] + "..."
