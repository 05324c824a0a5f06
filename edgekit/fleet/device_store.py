"""One device's store, wherever it is: on this machine (host "local") or over SSH.

The same four store operations either way (deploy, status, reject, rollback), run by the same
code: ``edgekit.store.ops`` here, ``python3 -m edgekit.store`` on the device over SSH. Files for
a remote deploy are copied into ``STORE/incoming/`` on the device (devices that share a login keep
their copies apart) and removed once the deploy answered, so a store keeps no stray copy.
A release bundle (a folder) travels as one tar stream, unpacked on the device by ``tar``
(edgekit.store.remote.deploy_remote).

Example:
    >>> from edgekit.fleet.inventory import Device
    >>> st = DeviceStore(Device(name="gw", host="local", store="/var/lib/app/models"))   # doctest: +SKIP
    >>> st.deploy("digits-int8.tflite", calls=200)["action"]                            # doctest: +SKIP
    'staged'
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..errors import RemoteError, StoreError
from .inventory import Device

INCOMING = "incoming"  # STORE/incoming/: where a remote deploy's files land before the store takes them
CLEAR_TIMEOUT_S = 60


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
        from ..store.remote import deploy_remote

        try:
            return deploy_remote(source, self.device.target, self.opts, self.store, trust=trust,
                                 canary_calls=calls, canary_minutes=minutes, budgets=budgets, force=force)
        finally:
            self._clear_incoming()

    def _clear_incoming(self) -> None:
        """Best effort: the store holds what it took; the copies are not needed any more."""
        from ..profile.remote_ssh import shell_word
        from ..store.remote import ssh_run

        try:
            ssh_run(self.device.target, self.opts, f"rm -rf {shell_word(self.opts.remote_dir)}", "clearing the copies",
                    timeout_s=CLEAR_TIMEOUT_S)
        except RemoteError:
            pass

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
