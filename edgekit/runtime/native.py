"""The guard kernel (guard_kernel.c), compiled once per machine with the system C compiler.

edgekit is a pure-Python wheel and devices rarely have Python's headers, so the kernel is plain C with
no Python.h, built on first use into the cache (``$EDGEKIT_CACHE_DIR/native`` or
``~/.cache/edgekit/native``, keyed by the source, the flags and the machine) and loaded with ctypes; its
checks are called as Python builtins it makes itself (Kernel).
Where there is no compiler, the platform is not Linux or macOS, the build fails, or
``EDGEKIT_NATIVE=0``, ``kernel()`` returns None and the guard keeps its numpy plan (check_plan.py),
which computes the same verdicts and stays the reference the tests compare against.

Example:
    >>> import numpy as np
    >>> k = kernel()
    >>> k is None or k.sum(np.ones(5, np.float32)) == 5.0
    True
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from .. import fsutil

SOURCE = Path(__file__).with_name("guard_kernel.c")
FLAGS = ["-O3", "-shared", "-fPIC", "-fno-math-errno"]
# Built where it runs, so for this CPU's vector units (2x on the sums here); a compiler that does not
# take it builds without. The cache key holds the CPU, so a cache shared by other machines is safe.
TUNE = ["-march=native"]
_lock = threading.Lock()
_state: dict = {}  # "lib": the loaded library or None, "why": why it is None


class PlanStruct(ctypes.Structure):
    """guard_kernel.c's ``plan_t``, field for field (ctypes lays it out by the same C rules)."""

    _fields_ = [("size", ctypes.c_int64), ("mode", ctypes.c_int32),
                *[(n, ctypes.c_int32) for n in ("h", "w", "c", "k0", "k1", "f", "rough", "colour", "reach")],
                ("lo_bound", ctypes.c_float), ("hi_bound", ctypes.c_float),
                ("g_mean", ctypes.c_double * 3), ("g_inv", ctypes.c_double * 3),
                *[(n, ctypes.c_double) for n in ("log_eps", "cell_const", "inv_cell", "inv_glob", "rough_scale")],
                ("reach_p", ctypes.c_double * 4), ("colour_p", ctypes.c_double * 2),
                ("w6", ctypes.c_void_p), ("rows", ctypes.c_void_p), ("lin", ctypes.c_void_p),
                ("lo", ctypes.c_double), ("hi", ctypes.c_double)]


KEEP_BUILDS = 4  # kernel builds kept per machine type (~28 KB each)


def cache_dir() -> Path:
    return fsutil.cache_dir("native")


def kernel():
    """The loaded Kernel, or None; built once per machine."""
    if "lib" in _state:
        return _state["lib"]
    with _lock:
        if "lib" not in _state:
            lib, why = _load()
            _state["lib"], _state["why"] = lib, why
    return _state["lib"]


def why_not() -> str | None:
    """Why ``kernel()`` is None (one line), or None when it loaded."""
    kernel()
    return _state.get("why")


def _reset() -> None:
    """Forget the loaded kernel (tests: the next ``kernel()`` reads the environment again)."""
    _state.clear()


def _load():
    if os.environ.get("EDGEKIT_NATIVE", "1").strip().lower() in ("0", "no", "off", "false"):
        return None, "EDGEKIT_NATIVE=0"
    if sys.platform not in ("linux", "darwin"):
        return None, f"no kernel build on {sys.platform}"
    try:
        src = SOURCE.read_bytes()
    except OSError as err:
        return None, f"kernel source missing: {err}"
    flags = FLAGS + (["-undefined", "dynamic_lookup"] if sys.platform == "darwin" else [])
    key = hashlib.sha256(src + " ".join(flags + TUNE).encode() + platform.machine().encode() + _cpu()).hexdigest()[:16]
    path = cache_dir() / f"guard-{platform.machine()}-{key}.so"
    failed = path.with_suffix(".failed")
    if not path.exists():
        if failed.exists():  # this compiler failed on this source once: do not pay for it on every load
            return None, failed.read_text(errors="replace").strip() or "kernel build failed"
        why = _build(path, flags)
        if why is not None:
            return None, why
    return _open(path)


def _open(path: Path):
    """(the library with its functions typed, None) or (None, why): it must match PlanStruct."""
    try:
        st = path.stat()
    except OSError as err:
        return None, f"kernel did not load: {err}"
    # code loaded into this process: only a file this user made and nobody else can change
    if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
        return None, f"kernel {path} is not this user's or is writable by others: not loaded (remove it)"
    try:
        lib = ctypes.PyDLL(str(path))  # PyDLL: the GIL stays held (the kernel calls the buffer API)
        lib.edgekit_layout.restype = ctypes.c_int64
        lib.edgekit_layout.argtypes = []
        lib.edgekit_builtin.restype = ctypes.py_object  # a new reference, which ctypes takes over
        lib.edgekit_builtin.argtypes = [ctypes.c_int, ctypes.py_object]
    except (OSError, AttributeError) as err:
        return None, f"kernel did not load: {err}"
    want = ctypes.sizeof(PlanStruct) * 65536 + PlanStruct.lo.offset
    if lib.edgekit_layout() != want:
        return None, "kernel's plan layout differs from PlanStruct (rebuild: remove the cached .so)"
    return Kernel(lib), None


class Kernel:
    """The loaded kernel's two checks as Python builtins (guard_kernel.c says why not ctypes calls).

    ``sum(a)``: the float64 sum of a C-contiguous float32 array's values (NaN for anything else);
    ``checker(plan)``: a function of one sample bound to a PlanStruct (check_plan.NativePlan fills it).

    Example: ``native.kernel().sum(np.ones(4, np.float32))`` is 4.0.
    """

    def __init__(self, lib):
        self.lib = lib
        self.sum = lib.edgekit_builtin(1, None)

    def checker(self, plan: PlanStruct, keep: list):
        """sample -> score, -1.0 or -2.0 (guard_kernel.c); holds ``plan`` and ``keep`` (the arrays it
        points into) alive for as long as the function lives."""
        return self.lib.edgekit_builtin(0, (ctypes.addressof(plan), (plan, keep)))


def _selftest(lib) -> str | None:
    """The kernel's verdicts on known inputs (run once, after a build): None, or what went wrong."""
    import numpy as np

    rng = np.random.default_rng(0)
    p = PlanStruct()
    p.size, p.lo_bound, p.hi_bound = 1000, -1.0, 1.0
    check = lib.checker(p, [])
    x = rng.uniform(-1, 1, 1000).astype(np.float32)
    cases = [(x, 0.0), (x * 2, -1.0), (x[:999], -2.0), (x.astype(np.float64), -2.0), (x.reshape(20, 50).T, -2.0)]
    for bad in (np.nan, np.inf):
        y = x.copy()
        y[517] = bad
        cases.append((y, -1.0))
    for arr, want in cases:
        got = check(arr)
        if got != want:
            return f"kernel self-test failed: check gave {got}, expected {want}"
    check(x)
    if not (p.lo == float(x.min()) and p.hi == float(x.max())):
        return "kernel self-test failed: min / max"
    big = np.full(4097, 3e38, np.float32)
    for arr, want in ((x, float(x.astype(np.float64).sum())), (big, 4097 * float(big[0]))):
        got = lib.sum(arr)
        if not abs(got - want) <= 1e-9 * max(1.0, abs(want)):
            return f"kernel self-test failed: sum gave {got}, expected {want}"
    if lib.sum(x[::2]) == lib.sum(x[::2]):  # not contiguous: NaN, the caller's exact path
        return "kernel self-test failed: a strided array was summed"
    return None


def _cpu() -> bytes:
    """What identifies this CPU's instruction set (Linux: /proc/cpuinfo's model and feature lines)."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            keep = (b"vendor_id", b"model name", b"flags", b"Features", b"CPU implementer", b"CPU part")
            return b"".join(sorted({ln for ln in f.read().splitlines() if ln.startswith(keep)}))
    except OSError:
        return platform.processor().encode()


def _build(path: Path, flags: list[str]) -> str | None:
    """Compile the kernel into ``path`` (atomically); None on success, else the reason in one line."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        return "no C compiler (cc) on this machine"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as err:
        return f"kernel cache not writable: {err}"
    try:
        for tune in (TUNE, []):
            r = subprocess.run([cc, *flags, *tune, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True,
                               timeout=120)
            if r.returncode == 0:
                break
        if r.returncode != 0:
            why = "kernel build failed: " + " ".join((r.stderr or r.stdout).split())[:300]
        else:
            lib, why = _open(Path(tmp))
            why = why or _selftest(lib)
        if why is not None:  # remembered: this compiler and source are not retried on every load
            try:
                path.with_suffix(".failed").write_text(why + "\n")
            except OSError:
                pass
            return why
        os.replace(tmp, path)
        # builds for older sources or flags stay usable by processes that loaded them (Linux keeps an unlinked
        # library mapped); the newest few are kept for other edgekit versions on this machine
        fsutil.keep_newest(path.parent, KEEP_BUILDS, f"guard-{platform.machine()}-*.so")
        return None
    except (OSError, subprocess.SubprocessError) as err:
        return f"kernel build failed: {err}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
