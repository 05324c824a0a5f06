"""Where trials run: parallel local processes (default) or tasks on an existing Ray cluster.

Both hand back ``concurrent.futures.Future`` objects, so the search loop is the same.
Local workers are spawned (not forked: TensorFlow's threads do not survive a fork) and
each imports TensorFlow once, then takes trial after trial. Ray is an optional extra
(``pip install 'edgekit[ray]'``), imported only when ``--ray`` is given; its workers need
edgekit installed, and get the source and data files shipped with the task.

Example:
    >>> with LocalExecutor(workers=2) as ex:                     # doctest: +SKIP
    ...     fut = ex.submit(run_trial, cand.to_dict(), ex.share(inputs))
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable

from ..errors import MissingDependencyError, RemoteError, UsageError

RAY_HINT = "--ray needs Ray; install it with: pip install 'edgekit[ray]'"


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


class LocalExecutor:
    """A pool of spawned processes; ``workers`` defaults to the usable cores."""

    kind = "local"

    def __init__(self, workers: int | None = None):
        if workers is not None and workers < 1:
            raise UsageError(f"--workers must be at least 1, got {workers}")
        self.workers = workers or default_workers()
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))

    def share(self, obj: Any) -> Any:
        return obj  # same machine: the paths in it are valid in the workers

    def submit(self, fn: Callable, *args) -> Future:
        return self._pool.submit(fn, *args)

    def close(self, cancel: bool = False) -> None:
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *rest):
        self.close(cancel=exc_type is not None)


def import_ray():
    try:
        import ray
    except ImportError:
        raise MissingDependencyError(RAY_HINT) from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray {address}: give auto or HOST:PORT of the cluster's head (ray start --head --port)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise RemoteError(f"--ray {address}: cannot connect to the Ray head ({err.strerror or err}); "
                          "start one with `ray start --head` or check HOST:PORT") from None


def _call(fn, *args):
    return fn(*args)


class RayExecutor:
    """Trials as Ray tasks on a running cluster: ``address`` is ``auto`` or ``HOST:PORT``."""

    kind = "ray"

    def __init__(self, address: str, workers: int | None = None):
        kw = {}
        if address.split(":")[0] in ("127.0.0.1", "localhost"):
            # A head on loopback is reachable from this machine only. Ray swaps "local" addresses
            # for the machine's outward one unless this is set before it is imported, and the
            # driver must register on loopback too, or driver and head cannot reach each other.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
            kw["_node_ip_address"] = "127.0.0.1"
        if address != "auto":
            _check_reachable(address)  # ray.init waits minutes for an absent head; say so at once
        ray = import_ray()
        self._ray = ray
        try:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR", configure_logging=True, **kw)
        except (ConnectionError, RuntimeError, ValueError) as err:
            first = next((ln for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
            raise RemoteError(f"--ray {address}: cannot connect to the Ray cluster ({first[:200]}); "
                              "start one with `ray start --head` or give its HOST:PORT") from None
        self.workers = workers or int(ray.cluster_resources().get("CPU", 1))
        # one CPU each: TensorFlow uses several threads, but a trial is mostly one busy core
        self._remote = ray.remote(num_cpus=1, max_retries=0)(_call)

    def share(self, obj: Any) -> Any:
        from .trials import TrialInputs, shipped

        if isinstance(obj, TrialInputs):
            obj = shipped(obj)  # the workers may be on other machines: send the files themselves
        return self._ray.put(obj)  # once, not once per task

    def submit(self, fn: Callable, *args) -> Future:
        return self._remote.remote(fn, *args).future()

    def close(self, cancel: bool = False) -> None:
        self._ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_executor(ray: str | None = None, workers: int | None = None):
    return RayExecutor(ray, workers) if ray else LocalExecutor(workers)
