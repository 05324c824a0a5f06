"""Profile on a device over SSH: copy the model, pipe the child script to ``python3 -``, bring the JSON back.

The device needs python3 with numpy and an interpreter package (ai-edge-litert,
or tflite-runtime on armv7l), not edgekit: child.py is standalone, and
machine.py, memory.py and edgekit/quant.py travel bundled in front of it. Hosts run in parallel,
each in its own thread; each thread count is still a fresh process on the device.

On a timeout or Ctrl-C the local ssh is killed and so is the device's process group
(``ssh HOST kill -9 -PGID``, the group the child announced): without a tty, killing
ssh alone leaves the remote python running.

Example:
    >>> docs, failed = profile_hosts("m.tflite", ["pi@raspberrypi.local"], SSHOptions(port=22))   # doctest: +SKIP
    >>> docs[0]["machine"]["cpu_model"]                                                          # doctest: +SKIP
    'Raspberry Pi 4 Model B Rev 1.4 (BCM2835)'
"""

from __future__ import annotations

import json
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import quant, waiting
from ..engine import onnx_interp, tflite_interp
from ..errors import EdgekitError, RemoteError, UsageError
from ..fsutil import sha256_file
from . import child, machine, memory
from .processes import DEFAULT_TIMEOUT_S, ProgressFn, kill_all, run_process
from .profiler import (check_counts, check_model, check_timeout, child_config, child_timeout, document,
                       make_row, model_info, parse_child, parse_threads, plan_inputs, timeout_error)
from .render import plural

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
        return cmd + ["--", check_host(host), remote]  # "--": nothing after it is read as an ssh option


def check_host(host: str) -> str:
    """The host, unless ssh would read it as an option (``-oProxyCommand=...`` runs a local command).

    Example:
        >>> check_host("-oProxyCommand=touch /tmp/x")
        Traceback (most recent call last):
        edgekit.errors.UsageError: --host '-oProxyCommand=touch /tmp/x': a host cannot start with '-'; give user@host
    """
    if not host or host.startswith("-"):
        raise UsageError(f"--host {host!r}: a host cannot start with '-'; give user@host")
    return host


def bundle_source() -> str:
    """child.py with machine.py, memory.py, edgekit/quant.py and edgekit/engine/{tflite,onnx}_interp.py registered
    in sys.modules ahead of it: one script for stdin. quant.py needs numpy: when the device lacks it, the
    bundle skips it and the child reports the missing numpy itself."""
    future = "from __future__ import annotations\n"  # must stay the first statement of the script
    parts = [future, "import sys as _sys, types as _types\n"]
    for mod in (machine, memory, quant, tflite_interp, onnx_interp):
        name = mod.__name__.rsplit(".", 1)[-1]
        src = Path(mod.__file__).read_text(encoding="utf-8")
        run = f"exec(compile({src!r}, {name + '.py'!r}, 'exec'), _m.__dict__)\n"
        if mod is quant:
            run = f"try:\n    {run}except ImportError:\n    _m = None\n"
        parts.append(
            f"_m = _types.ModuleType({name!r})\n"
            f"{run}"
            f"if _m is not None:\n    _sys.modules[{name!r}] = _m\n"
        )
    parts.append(Path(child.__file__).read_text(encoding="utf-8").replace(future, "", 1))
    return "".join(parts)


def shell_word(path: str) -> str:
    """Quote for the remote shell, but let a leading ``~/`` expand there (``--remote-python ~/venv/bin/python``)."""
    return "~/" + shlex.quote(path[2:]) if path.startswith("~/") else shlex.quote(path)


def remote_killer(host: str, opts: SSHOptions):
    """on_kill for run_process: kill the process group the child announced on the device."""

    def kill(pgid: int) -> None:
        subprocess.run(opts.command(host, f"kill -9 -{int(pgid)}"), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=opts.connect_timeout + 5)

    return kill


def _run(host: str, opts: SSHOptions, remote: str, *, what: str, timeout_s: float, limit_s: float | None = None,
         **kw):
    """Run ``remote`` on ``host``, killed (here and there) after ``timeout_s``; ``limit_s`` is the
    --timeout the error names (the child's backstop kill comes GRACE_S after it)."""
    try:
        res = run_process(opts.command(host, remote), timeout_s=timeout_s, on_kill=remote_killer(host, opts), **kw)
    except FileNotFoundError:
        raise RemoteError("ssh is not installed here; install openssh-client to profile over SSH") from None
    if res.timed_out:
        raise timeout_error(host, what, limit_s or timeout_s)
    if res.returncode == SSH_EXIT_CONNECT and child.RUSAGE_TAG not in res.stdout:  # else: the child died remotely
        last = (res.stderr.strip().splitlines() or ["no message"])[-1].strip()
        raise RemoteError(f"{host}: cannot connect over ssh ({last}); check the host, --ssh-port and --ssh-key")
    if res.returncode == SHELL_NOT_FOUND and child.RESULT_TAG not in res.stdout:
        raise RemoteError(f"{host}: {opts.python!r} not found on the device; install python3 there "
                          "or pass --remote-python")
    return res


def copy_file(host: str, opts: SSHOptions, local: Path, suffix: str, sha256: str | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S) -> str:
    """Copy through ssh (no scp needed on the device) to a name keyed by content; returns the remote path.

    ``sha256`` is the file's digest when the caller already has it."""
    folder = shell_word(opts.remote_dir)
    dest = f"{opts.remote_dir}/{(sha256 or sha256_file(local))[:16]}{suffix}"
    quoted = shell_word(dest)
    data = local.read_bytes()
    part = f"{quoted}.part.$$"  # $$ (the remote shell's pid): parallel copies to one device do not collide
    # Renamed only when every byte arrived: a copy cut short (a timeout, Ctrl-C) ends cat with a
    # plain EOF, and must not leave a truncated file under the content's name.
    script = (f"mkdir -p {folder} && cat > {part} && test $(wc -c < {part}) -eq {len(data)} "
              f"&& mv {part} {quoted} || {{ rm -f {part}; exit 1; }}")
    res = _run(host, opts, script, stdin=data, what=f"copying {local.name}", timeout_s=timeout_s)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no message"])[-1]
        raise RemoteError(f"{host}: cannot copy {local.name} to the device: {last}")
    return dest


def profile_host(model: str | Path, host: str, opts: SSHOptions, *, runs: int = 200, warmup: int = 20,
                 threads: Any = None, input: Any = None, backend: str | None = None,
                 on_progress: ProgressFn | None = None, timeout_s: float | None = None,
                 load: dict | None = None) -> dict[str, Any]:
    """Profile ``model`` on one SSH host; the document's device is ``{"kind": "ssh", "name": host}``.
    ``load``: the external delegate (a library on the device) and the signature (profiler.check_load).

    ``timeout_s`` limits each process (a copy, one thread count's child; default 600 s)."""
    path = check_model(model)
    thread_list = parse_threads(threads)
    plan = plan_inputs(path, input)
    check_counts(runs, warmup)
    limit = check_timeout(timeout_s)
    info = model_info(path)
    remote_model = copy_file(host, opts, path, path.suffix or ".tflite", sha256=info["sha256"], timeout_s=limit)
    remote_of = {str(f): copy_file(host, opts, f, f.suffix, timeout_s=limit) for f in plan.files}
    spec = dict(plan.spec, files={name: dict(src, path=remote_of[src["path"]])
                                  for name, src in plan.spec["files"].items()})
    script = bundle_source().encode("utf-8")
    rows, mach = [], {}
    for n in thread_list:
        cfg = child_config(remote_model, runs=runs, warmup=warmup, threads=n, inputs=spec, backend=backend,
                           progress=on_progress is not None, timeout_s=limit, load=load)
        remote = f"{shell_word(opts.python)} - {shlex.quote(json.dumps(cfg))}"
        what = f"{path.name}: the run with {plural(n, 'thread')}"
        res = _run(host, opts, remote, stdin=script, label=f"{host} {n}t", on_progress=on_progress,
                   what=what, timeout_s=child_timeout(limit), limit_s=limit)
        raw = parse_child(res, path.name, where=host, what=f"the run with {plural(n, 'thread')}", timeout_s=limit)
        mach = mach or raw.get("machine") or {}
        rows.append(make_row(raw))
    settings = {"runs": runs, "warmup": warmup, "threads": thread_list, "input": plan.settings, "timeout_s": limit,
                **({"load": load} if load else {})}
    return document(info, {"kind": "ssh", "name": host}, mach, settings, rows)


@dataclass
class HostFailure:
    """A host whose profile failed, and the one-line error that says why."""

    host: str
    error: EdgekitError


def profile_hosts(model: str | Path, hosts: list[str], opts: SSHOptions,
                  **kwargs) -> tuple[list[dict[str, Any]], list[HostFailure]]:
    """Profile on every host in parallel: (documents of the hosts that worked, the failures).

    Options are checked once first (a bad --input fails before any host is contacted). With one
    host its error is raised as is; with several, the others' results are kept.
    """
    for host in hosts:
        check_host(host)
    path = check_model(model)
    parse_threads(kwargs.get("threads"))
    plan_inputs(path, kwargs.get("input"))
    check_counts(kwargs.get("runs", 200), kwargs.get("warmup", 20))
    check_timeout(kwargs.get("timeout_s"))
    docs, failures = [], []
    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        futures = [pool.submit(profile_host, model, h, opts, **kwargs) for h in hosts]
        try:
            for host, fut in zip(hosts, futures):
                try:
                    docs.append(waiting.result(fut))  # in slices: Ctrl-C on any thread
                except EdgekitError as err:
                    if len(hosts) == 1:
                        raise
                    failures.append(HostFailure(host, err))
        except KeyboardInterrupt:  # kill first: leaving this block waits for the workers, which wait for ssh
            kill_all()
            raise
    return docs, failures
