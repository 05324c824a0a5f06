"""Profile on a device over SSH: copy the model, pipe the child script to ``python3 -``, bring the JSON back.

The device needs python3 with numpy and an interpreter package (ai-edge-litert,
or tflite-runtime on armv7l), not edgekit: child.py is standalone, and
machine.py and memory.py travel bundled in front of it. Hosts run in parallel,
each in its own thread; each thread count is still a fresh process on the device.

Example:
    >>> docs = profile_hosts("m.tflite", ["pi@raspberrypi.local"], SSHOptions(port=22))   # doctest: +SKIP
    >>> docs[0]["machine"]["cpu_model"]                                                  # doctest: +SKIP
    'Raspberry Pi 4 Model B Rev 1.4 (BCM2835)'
"""

from __future__ import annotations

import json
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RemoteError
from ..fsutil import sha256_file
from . import child, machine, memory
from .profiler import (ProgressFn, check_counts, check_tflite, child_config, document, input_spec, make_row,
                       model_info, parse_child, parse_threads, run_process)

REMOTE_DIR = ".cache/edgekit/profile"  # relative to the login directory, where ssh starts the command
SSH_EXIT_CONNECT = 255  # ssh's own failures (cannot resolve, refused, auth) exit 255
SHELL_NOT_FOUND = 127


@dataclass
class SSHOptions:
    """How to reach the hosts; None keeps ssh's own default (and ~/.ssh/config)."""

    key: str | None = None
    port: int | None = None
    config: str | None = None
    options: list[str] = field(default_factory=list)  # extra ``-o KEY=VALUE``
    python: str = "python3"
    connect_timeout: int = 10
    remote_dir: str = REMOTE_DIR  # where copies land on the device (relative to the login directory)

    def command(self, host: str, remote: str) -> list[str]:
        cmd = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        if self.config:
            cmd += ["-F", self.config]
        if self.key:
            cmd += ["-i", self.key]
        if self.port:
            cmd += ["-p", str(self.port)]
        for opt in self.options:
            cmd += ["-o", opt]
        return cmd + [host, remote]


def bundle_source() -> str:
    """child.py with machine.py and memory.py registered in sys.modules ahead of it: one script for stdin."""
    future = "from __future__ import annotations\n"  # must stay the first statement of the script
    parts = [future, "import sys as _sys, types as _types\n"]
    for mod in (machine, memory):
        name = mod.__name__.rsplit(".", 1)[-1]
        src = Path(mod.__file__).read_text(encoding="utf-8")
        parts.append(
            f"_m = _types.ModuleType({name!r})\n"
            f"exec(compile({src!r}, {name + '.py'!r}, 'exec'), _m.__dict__)\n"
            f"_sys.modules[{name!r}] = _m\n"
        )
    parts.append(Path(child.__file__).read_text(encoding="utf-8").replace(future, "", 1))
    return "".join(parts)


def shell_word(path: str) -> str:
    """Quote for the remote shell, but let a leading ``~/`` expand there (``--remote-python ~/venv/bin/python``)."""
    return "~/" + shlex.quote(path[2:]) if path.startswith("~/") else shlex.quote(path)


def _run(host: str, opts: SSHOptions, remote: str, **kw):
    try:
        res = run_process(opts.command(host, remote), **kw)
    except FileNotFoundError:
        raise RemoteError("ssh is not installed here; install openssh-client to profile over SSH") from None
    if res.returncode == SSH_EXIT_CONNECT and child.RUSAGE_TAG not in res.stdout:  # else: the child died remotely
        last = (res.stderr.strip().splitlines() or ["no message"])[-1].strip()
        raise RemoteError(f"{host}: cannot connect over ssh ({last}); check the host, --ssh-port and --ssh-key")
    if res.returncode == SHELL_NOT_FOUND and child.RESULT_TAG not in res.stdout:
        raise RemoteError(f"{host}: {opts.python!r} not found on the device; install python3 there "
                          "or pass --remote-python")
    return res


def copy_file(host: str, opts: SSHOptions, local: Path, suffix: str, sha256: str | None = None) -> str:
    """Copy through ssh (no scp needed on the device) to a name keyed by content; returns the remote path.

    ``sha256`` is the file's digest when the caller already has it."""
    folder = shell_word(opts.remote_dir)
    dest = f"{opts.remote_dir}/{(sha256 or sha256_file(local))[:16]}{suffix}"
    quoted = shell_word(dest)
    # $$ (the remote shell's pid): parallel copies to one device do not collide
    script = f"mkdir -p {folder} && cat > {quoted}.part.$$ && mv {quoted}.part.$$ {quoted}"
    res = _run(host, opts, script, stdin=local.read_bytes())
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise RemoteError(f"{host}: cannot copy {local.name} to the device: {last}")
    return dest


def profile_host(model: str | Path, host: str, opts: SSHOptions, *, runs: int = 200, warmup: int = 20,
                 threads: Any = None, input: str | Path | None = None, backend: str | None = None,
                 on_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Profile ``model`` on one SSH host; the document's device is ``{"kind": "ssh", "name": host}``."""
    path = check_tflite(model)
    thread_list = parse_threads(threads)
    inputs = input_spec(path, input)
    check_counts(runs, warmup)
    info = model_info(path)
    remote_model = copy_file(host, opts, path, ".tflite", sha256=info["sha256"])
    if inputs["kind"] == "file":
        local_input = Path(inputs["path"])
        inputs = {"kind": "file", "path": copy_file(host, opts, local_input, local_input.suffix)}
    script = bundle_source().encode("utf-8")
    rows, mach = [], {}
    for n in thread_list:
        cfg = child_config(remote_model, runs=runs, warmup=warmup, threads=n, inputs=inputs, backend=backend,
                           progress=on_progress is not None)
        remote = f"{shell_word(opts.python)} - {shlex.quote(json.dumps(cfg))}"
        res = _run(host, opts, remote, stdin=script, label=f"{host} {n}t", on_progress=on_progress)
        raw = parse_child(res, path.name, where=host)
        mach = mach or raw["machine"]
        rows.append(make_row(raw))
    settings = {"runs": runs, "warmup": warmup, "threads": thread_list,
                "input": "random" if input in (None, "random") else str(input)}
    return document(info, {"kind": "ssh", "name": host}, mach, settings, rows)


def profile_hosts(model: str | Path, hosts: list[str], opts: SSHOptions, **kwargs) -> list[dict[str, Any]]:
    """Profile on every host in parallel; the first failure (in host order) is raised after all finish."""
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        futures = [pool.submit(profile_host, model, h, opts, **kwargs) for h in hosts]
    return [f.result() for f in futures]
