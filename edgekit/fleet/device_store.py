"""One device's store, wherever it is: on this machine (host "local") or over SSH.

The same four store operations either way (deploy, status, reject, rollback), run by the same
code: ``edgekit.store.ops`` here, ``python3 -m edgekit.store`` on the device over SSH. Files for
a remote deploy are copied into ``STORE/incoming/`` on the device (devices that share a login keep
their copies apart) and removed once the deploy answered, so a store keeps no stray copy.
A release bundle (a folder) travels as one tar stream, unpacked on the device by ``tar``.

Example:
    >>> from edgekit.fleet.inventory import Device
    >>> st = DeviceStore(Device(name="gw", host="local", store="/var/lib/app/models"))   # doctest: +SKIP
    >>> st.deploy("digits-int8.tflite", calls=200)["action"]                            # doctest: +SKIP
    'staged'
"""

from __future__ import annotations

import dataclasses
import io
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from ..errors import RemoteError, StoreError
from ..fsutil import sha256_bytes
from ..release.layout import is_bundle
from .inventory import Device

INCOMING = "incoming"  # STORE/incoming/: where a remote deploy's files land before the store takes them
COPY_TIMEOUT_S = 300


class DeviceStore:
    """The store of one inventory device; every method returns the store command's JSON answer."""

    def __init__(self, device: Device):
        self.device = device
        self.local = device.host == "local"
        self.store = str(Path(device.store).expanduser()) if self.local else device.store
        if not self.local:
            self.opts = dataclasses.replace(device.ssh(), remote_dir=f"{device.store.rstrip('/')}/{INCOMING}")

    def deploy(self, source: str | Path, *, calls: int | None = None, minutes: float | None = None,
               budgets: dict[str, Any] | None = None, trust: list[Path] | None = None,
               force: bool = False) -> dict[str, Any]:
        """Stage ``source`` (a model or a release bundle folder) as a canary (activated when the store is empty).

        force: let in a version the store marked bad (the override goes into its history)."""
        from ..store import ops

        if self.local:
            return ops.deploy(source, self.store, trust=trust, canary_calls=calls, canary_minutes=minutes,
                              budgets=budgets, force=force)
        try:
            if is_bundle(source):
                return self._deploy_bundle(Path(source), calls, minutes, budgets, trust or [], force)
            from ..store.remote import deploy_remote

            return deploy_remote(source, self.device.target, self.opts, self.store, trust=trust,
                                 canary_calls=calls, canary_minutes=minutes, budgets=budgets, force=force)
        finally:
            self._clear_incoming()

    def _deploy_bundle(self, folder: Path, calls, minutes, budgets, trust: list[Path], force: bool) -> dict[str, Any]:
        from ..profile.remote_ssh import copy_file
        from ..store.remote import run_remote

        args = ["deploy", self._copy_folder(folder), "--store", self.store]
        for key in trust:
            args += ["--trust", copy_file(self.device.target, self.opts, Path(key), ".pem")]
        if calls is not None:
            args += ["--canary-calls", str(calls)]
        if minutes is not None:
            args += ["--canary-minutes", str(minutes)]
        for k, v in (budgets or {}).items():
            if v is not None:
                args += [f"--{k.replace('_', '-')}", str(v)]
        return dict(run_remote(self.device.target, self.opts, args + ["--force"] * force + ["--json"]),
                    host=self.device.target)

    def _copy_folder(self, folder: Path) -> str:
        """Copy a bundle's files as one tar stream into STORE/incoming/<digest>.bundle; returns that path."""
        from ..profile.remote_ssh import shell_word

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for p in sorted(folder.iterdir()):  # a bundle is flat: the store refuses a folder inside it
                tar.add(p, arcname=p.name, recursive=False)
        data = buf.getvalue()
        dest = f"{self.opts.remote_dir}/{sha256_bytes(data)[:16]}.bundle"
        part = f"{shell_word(dest)}.part.$$"
        script = (f"mkdir -p {part} && tar -xf - -C {part} && rm -rf {shell_word(dest)} && mv {part} "
                  f"{shell_word(dest)} || {{ rm -rf {part}; exit 1; }}")
        res = self._ssh(script, data, f"copying {folder.name}/")
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["no message"])[-1]
            raise RemoteError(f"{self.device.target}: cannot copy the bundle {folder} to the device: {last}")
        return dest

    def _clear_incoming(self) -> None:
        """Best effort: the store holds what it took; the copies are not needed any more."""
        from ..profile.remote_ssh import shell_word

        try:
            self._ssh(f"rm -rf {shell_word(self.opts.remote_dir)}", b"", "clearing the copies")
        except RemoteError:
            pass

    def _ssh(self, script: str, data: bytes, what: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self.opts.command(self.device.target, script), input=data, capture_output=True,
                                  timeout=COPY_TIMEOUT_S)
        except FileNotFoundError:
            raise RemoteError("ssh is not installed here; install openssh-client to deploy over SSH") from None
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.device.target}: {what} did not finish within {COPY_TIMEOUT_S} s") from None

    def status(self, history: int = 50) -> dict[str, Any] | None:
        """The store's status (edgekit status --json); None when there is no store there yet."""
        from ..store import ops

        try:
            if self.local:
                return ops.status(self.store, history=history)
            return self._remote(["status", "--store", self.store, "--json"])
        except StoreError as err:
            if "not a model store" in str(err):
                return None
            raise

    def reject(self, sha256: str, reason: str) -> dict[str, Any]:
        """Drop the staged candidate ``sha256`` if it is still the candidate (the active version stays)."""
        from ..store import ops

        if self.local:
            return ops.reject(self.store, sha256, reason)
        return self._remote(["reject", sha256, "--store", self.store, "--reason", reason, "--json"])

    def rollback(self, expect: str, reason: str) -> dict[str, Any]:
        """Back to the previous good version, only while ``expect`` is active."""
        from ..store import ops

        if self.local:
            return ops.rollback(self.store, reason, expect=expect)
        return self._remote(["rollback", "--store", self.store, "--expect", expect, "--reason", reason, "--json"])

    def _remote(self, args: list[str]) -> dict[str, Any]:
        from ..store.remote import run_remote

        return run_remote(self.device.target, self.opts, args)
