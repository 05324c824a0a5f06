"""Start, time-limit and stop the profiler's processes (the child here, ssh, adb) so none outlives the CLI.

Every process runs in a session of its own (``start_new_session``), so killing its
process group takes the measuring fork with it. A process that says
``EDGEKIT-PID <pgid>`` on stderr (the child does, also on a device) can be killed
there too: ``on_kill(pgid)`` runs ``ssh HOST kill -9 -PGID`` or ``adb shell kill``,
because killing the local ssh leaves the device's process running.

Two ways out besides finishing:
- a wall-clock limit per process (``timeout_s``): the group is killed and
  ``ProfileTimeout`` (exit 1) names what hung;
- Ctrl-C: ``interruptible()`` kills every live process (here and on the devices),
  refuses to start new ones, and raises ``Interrupted`` (exit 130).

Example:
    >>> run_process(["echo", "hi"], timeout_s=10).stdout
    'hi\\n'
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import Callable, Iterator

from .. import waiting
from ..errors import CheckFailed, EdgekitError
from .child import PID_TAG, PROGRESS_TAG

DEFAULT_TIMEOUT_S = 600.0  # per process; far above any normal profile (the digits CNN: about 2 s)
GRACE_S = 5.0  # the child stops itself at the limit; the parent kills it this much later if it did not

ProgressFn = Callable[[str, str, int, int], None]  # (label, phase, done, total)


class ProfileTimeout(CheckFailed):
    """A process did not finish within --timeout (exit 1: the input was fine, the run was not)."""


class Interrupted(EdgekitError):
    """Ctrl-C: everything started was stopped."""

    exit_code = 130


@dataclass
class ProcessResult:
    """What a finished child left behind: stdout, stderr (without progress and pid lines), exit code."""

    stdout: str
    stderr: str
    returncode: int
    timed_out: bool = False


class _Live:
    """One running process: its local group, and the remote group it announced (if any)."""

    def __init__(self, proc: subprocess.Popen, on_kill: Callable[[int], None] | None):
        self.proc, self.on_kill = proc, on_kill
        self.remote_pgid: int | None = None
        self._killed = threading.Lock()
        self.killed = False

    def kill(self) -> None:
        with self._killed:  # once, whether the timer or Ctrl-C comes first
            if self.killed:
                return
            self.killed = True
        # The device first: once the local process dies the caller moves on (and may exit).
        if self.on_kill and self.remote_pgid:
            with contextlib.suppress(Exception):  # best effort: the device may be unreachable by now
                self.on_kill(self.remote_pgid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)


_LIVE: set[_Live] = set()
_LOCK = threading.Lock()
_STOPPING = threading.Event()


def kill_all() -> None:
    """Kill every live process (and what each announced on its device); start no new ones."""
    _STOPPING.set()
    with _LOCK:
        live = list(_LIVE)
    for item in live:
        item.kill()


@contextlib.contextmanager
def interruptible(what: str = "profiling") -> Iterator[None]:
    """Turn Ctrl-C into: kill everything started inside, then ``Interrupted``."""
    _STOPPING.clear()
    try:
        yield
    except KeyboardInterrupt:
        kill_all()
        raise Interrupted(f"interrupted; stopped {what} and every process it had started") from None
    finally:
        _STOPPING.clear()


def run_process(cmd: list[str], *, stdin: bytes | None = None, label: str = "",
                on_progress: ProgressFn | None = None, timeout_s: float | None = None,
                on_kill: Callable[[int], None] | None = None) -> ProcessResult:
    """Run ``cmd``, forwarding the child's progress lines as they come; kill it after ``timeout_s``."""
    if _STOPPING.is_set():
        raise KeyboardInterrupt
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    live = _Live(proc, on_kill)
    with _LOCK:
        _LIVE.add(live)
    if _STOPPING.is_set():  # kill_all() ran between the check above and the add: its list missed this one
        live.kill()
        with _LOCK:
            _LIVE.discard(live)
        waiting.wait_process(proc)
        raise KeyboardInterrupt
    err_lines: list[str] = []

    def pump_stderr():
        for raw in proc.stderr:
            line = raw.decode("utf-8", "replace")
            if line.startswith(PROGRESS_TAG):
                phase, done, total = line[len(PROGRESS_TAG):].split()
                if on_progress:
                    on_progress(label, phase, int(done), int(total))
            elif line.startswith(PID_TAG) and live.remote_pgid is None:
                live.remote_pgid = int(line[len(PID_TAG):])
            else:
                err_lines.append(line)

    def feed_stdin():
        try:
            proc.stdin.write(stdin)
            proc.stdin.close()
        except (BrokenPipeError, OSError):  # the child died early; its exit code tells why
            pass

    out_chunks: list[bytes] = []

    def read_stdout():
        out_chunks.append(proc.stdout.read())

    # Every blocking read is in a thread and this one waits in slices (waiting.py): a Ctrl-C that
    # the kernel delivers to one of these threads still reaches the main thread within 0.1 s.
    threads = [threading.Thread(target=pump_stderr, daemon=True), threading.Thread(target=read_stdout, daemon=True)]
    if stdin is not None:
        threads.append(threading.Thread(target=feed_stdin, daemon=True))
    timer = threading.Timer(timeout_s, live.kill) if timeout_s else None
    if timer:
        timer.daemon = True
    try:
        for t in threads + ([timer] if timer else []):
            t.start()
        for t in threads:
            waiting.join(t)
        waiting.wait_process(proc)
        out = b"".join(out_chunks).decode("utf-8", "replace")
    except BaseException:  # Ctrl-C while waiting here (the local path): nothing may keep running
        live.kill()
        raise
    finally:
        if timer:
            timer.cancel()
        with _LOCK:
            _LIVE.discard(live)
    if live.killed and _STOPPING.is_set():
        raise KeyboardInterrupt  # killed by kill_all(): a worker thread stops here too
    return ProcessResult(out, "".join(err_lines), proc.returncode, timed_out=live.killed)
