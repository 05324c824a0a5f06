"""Deploy over SSH: copy the model, its manifest (and signature, trusted keys), or a release bundle
folder, to the device and run the same store code there (``python3 -m edgekit.store deploy ...``).
The device needs edgekit installed (no TensorFlow). The ssh command and the copy are
edgekit.profile.remote_ssh's.

Example:
    >>> opts = SSHOptions(port=22, python="~/edgekit/bin/python")                          # doctest: +SKIP
    >>> deploy_remote("digits-int8.tflite", "pi@raspberrypi.local", opts, "/var/lib/app/models")  # doctest: +SKIP
    {'sha256': '3f0c...', 'action': 'activated', ...}
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from ..errors import RemoteError, StoreError
from ..fsutil import sha256_bytes
from ..manifest import manifest_path_for
from ..profile.remote_ssh import SSH_EXIT_CONNECT, SSHOptions, check_host, copy_file, shell_word
from ..release.layout import is_bundle
from ..signing import signature_path_for

TIMEOUT_S = 300.0  # one store command or copy on the device


def ssh_options(key: str | None, port: int | None, config: str | None, options: list[str], python: str,
                remote_dir: str | None = None) -> SSHOptions:
    """The command's --ssh-* flags as SSHOptions (copies land in the profiler's remote folder by default)."""
    opts = SSHOptions(key=key, port=port, config=config, options=list(options), python=python)
    if remote_dir:
        opts.remote_dir = remote_dir
    return opts


def ssh_run(host: str, opts: SSHOptions, remote: str, what: str, stdin: bytes | None = None,
            timeout_s: float = TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run a shell command on ``host`` (``stdin`` fed to it); stderr and stdout come back as text."""
    try:
        res = subprocess.run(opts.command(host, remote), input=stdin, capture_output=True, timeout=timeout_s,
                             stdin=None if stdin is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise RemoteError("ssh is not installed here; install openssh-client to deploy over SSH") from None
    except subprocess.TimeoutExpired:
        raise RemoteError(f"{host}: {what} did not finish within {timeout_s:g} s") from None
    return subprocess.CompletedProcess(res.args, res.returncode, res.stdout.decode(errors="replace"),
                                       res.stderr.decode(errors="replace"))


def run_remote(host: str, opts: SSHOptions, args: list[str], timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """Run ``python -m edgekit.store ARGS --json`` on ``host``; its error is raised here with the same exit code.

    ``timeout_s``: ssh is killed after it (the store commands are short: nothing is left running there)."""
    remote = f"{shell_word(opts.python)} -m edgekit.store " + " ".join(shell_word(a) for a in args)
    res = ssh_run(host, opts, remote, "the store command", timeout_s=timeout_s)
    last = (res.stderr.strip().splitlines() or ["no message"])[-1].strip()
    if res.returncode == SSH_EXIT_CONNECT:
        raise RemoteError(f"{host}: cannot connect over ssh ({last}); check the host, --ssh-port and --ssh-key")
    if res.returncode != 0:
        if "No module named edgekit" in res.stderr:
            raise RemoteError(f"{host}: edgekit is not installed for {opts.python} on the device; "
                              "pip install edgekit there or pass --remote-python")
        err = StoreError(f"{host}: {last.removeprefix('error: ')}")
        err.exit_code = res.returncode if res.returncode in (1, 2) else 2
        raise err
    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError:
        raise RemoteError(f"{host}: the device answered with no JSON ({last})") from None


def copy_folder(host: str, opts: SSHOptions, folder: Path) -> str:
    """Copy a flat folder (a release bundle) as one tar stream into ``opts.remote_dir/<digest>.bundle``,
    unpacked there by ``tar`` and renamed into place whole; returns that path on the device."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(folder.iterdir()):  # a bundle is flat: the store refuses a folder inside it
            tar.add(p, arcname=p.name, recursive=False)
    data = buf.getvalue()
    remote = f"{opts.remote_dir}/{sha256_bytes(data)[:16]}.bundle"
    dest = shell_word(remote)
    part = f"{dest}.part.$$"  # $$: the remote shell's pid, so parallel copies do not collide
    script = (f"mkdir -p {part} && tar -xf - -C {part} && rm -rf {dest} && mv {part} {dest} "
              f"|| {{ rm -rf {part}; exit 1; }}")
    res = ssh_run(host, opts, script, f"copying {folder}", stdin=data)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise RemoteError(f"{host}: cannot copy the bundle {folder} to the device: {last}")
    return remote


def deploy_remote(model: str | Path, host: str, opts: SSHOptions, store: str, *, manifest: str | Path | None = None,
                  signature: str | Path | None = None, trust: list[str | Path] | None = None,
                  canary_calls: int | None = None, canary_minutes: float | None = None,
                  budgets: dict[str, Any] | None = None, force: bool = False, target: str | None = None,
                  require_evidence: bool = False) -> dict[str, Any]:
    """Copy and deploy on one SSH host (a model with its manifest and signature, or a release bundle folder);
    returns the device's answer with ``host`` added. ``target`` and ``require_evidence`` go to the device's
    ``python -m edgekit.store deploy`` as they are (the store there checks a bundle's target and keeps the rule)."""
    check_host(host)  # before any file is read or copied
    model = Path(model)
    if is_bundle(model):
        args = ["deploy", copy_folder(host, opts, model), "--store", store]
    else:
        man = Path(manifest) if manifest else manifest_path_for(model)
        sig = Path(signature) if signature else signature_path_for(model)
        for p, what in ((model, "model file"), (man, "manifest")):
            if not p.is_file():
                raise StoreError(f"{p}: {what} not found")
        args = ["deploy", copy_file(host, opts, model, model.suffix or ".tflite"), "--store", store,
                "--manifest", copy_file(host, opts, man, ".manifest.json")]
        if sig.is_file():
            args += ["--signature", copy_file(host, opts, sig, ".sig")]
    for key in trust or []:
        args += ["--trust", copy_file(host, opts, Path(key), ".pem")]
    if canary_calls is not None:
        args += ["--canary-calls", str(canary_calls)]
    if canary_minutes is not None:
        args += ["--canary-minutes", str(canary_minutes)]
    for k, v in (budgets or {}).items():
        if v is not None:
            args += [f"--{k.replace('_', '-')}", str(v)]
    if target is not None:
        args += ["--target", target]
    args += ["--require-evidence"] * require_evidence + ["--force"] * force
    return dict(run_remote(host, opts, args + ["--json"]), host=host)
