"""Waits that Ctrl-C can always interrupt, whichever thread the kernel gives the signal to.

A process-wide SIGINT is delivered to one thread the kernel picks. Python runs its handler
(raising KeyboardInterrupt) only in the main thread, and only when that thread runs Python
code: if the signal lands on a worker thread while the main thread is blocked in a read, a
``Thread.join()``, ``Future.result()`` or ``Popen.wait()``, nothing wakes the main thread and
Ctrl-C is held until the wait ends by itself (seen on a loaded machine: `edgekit profile`
ran on for minutes after Ctrl-C). Waiting in short slices gives the handler a chance to run
after each one.

Example:
    >>> import threading
    >>> t = threading.Thread(target=lambda: None); t.start()
    >>> join(t)
"""

from __future__ import annotations

import subprocess
import threading
from concurrent import futures
from typing import Any, Iterable

SLICE_S = 0.1  # how long Ctrl-C can wait at most; short waits cost nothing noticeable


def join(thread: threading.Thread) -> None:
    """``thread.join()``, in slices."""
    while thread.is_alive():
        thread.join(SLICE_S)


def result(future: futures.Future) -> Any:
    """``future.result()``, in slices (its exception, if any, is raised as usual)."""
    while True:
        try:
            return future.result(timeout=SLICE_S)
        except futures.TimeoutError:
            if future.done():  # the future's own TimeoutError, not our slice
                raise


def wait_first(fs: Iterable[futures.Future]) -> set[futures.Future]:
    """The futures that are done, once at least one is (``concurrent.futures.wait`` FIRST_COMPLETED)."""
    fs = list(fs)
    while True:
        done, _ = futures.wait(fs, timeout=SLICE_S, return_when=futures.FIRST_COMPLETED)
        if done:
            return done


def wait_process(proc: subprocess.Popen) -> int:
    """``proc.wait()``, in slices; returns the exit code."""
    while True:
        try:
            return proc.wait(timeout=SLICE_S)
        except subprocess.TimeoutExpired:
            pass
