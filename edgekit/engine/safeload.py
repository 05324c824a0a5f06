"""Load model bytes without letting a hostile file take the caller's process down.

The TFLite interpreter checks a flatbuffer's structure but not its meaning: a file with,
say, an operator output index of -1 segfaults it (see FACTS.md). So before the caller's
process hands untrusted bytes to an interpreter:

1. cheap structural checks in-process (size, the ``TFL3`` identifier, root offset, every index
   an operator, tensor, subgraph or signature names in range), then the memory the tensors need
   against a limit (``check_memory``), before any allocation;
2. a probe subprocess loads, allocates and invokes the bytes on zeros, with the thread count the
   app asked for, then once more on a calibration-like input (the manifest's per-channel mean)
   when there is one. Only a clean exit lets the parent load them; a signal death or a refusal
   on zeros becomes ModelLoadError (an exception on the calibration-like input is safe in-process
   and left to the runtime's policy: only a crash or a hang refuses the file there);
3. before an interpreter is first resized to a new input shape (another batch size), the
   Runner probes that shape the same way (``verdict(..., shapes=...)``): a shape that crashes
   the probe is refused with InferenceError, and the caller's process never runs it.

The probe costs one Python start plus an interpreter import (0.28-0.36 s for the digits
model on the project's VM; not measured on a Pi). Verdicts are cached by sha256 + backend + delegate mode
+ threads + shapes + the calibration-like values in memory and, for passes, on disk (``$EDGEKIT_CACHE_DIR`` or ``~/.cache/edgekit/verified``), so each model
file pays it once per machine.

ONNX bytes (onnxrt.is_onnx) skip step 1 (ONNX Runtime parses the protobuf itself) and take the same
probe and verdict cache, on ONNX Runtime; an exception on zeros is tolerated there only when an input
has a dynamic dimension besides the batch (zeros of a guessed size say nothing; a crash still refuses).

Example:
    >>> data = open("digits-int8.tflite", "rb").read()               # doctest: +SKIP
    >>> session = load_session(data, label="digits-int8.tflite")     # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .. import fsutil
from ..errors import MissingDependencyError, ModelLoadError, UsageError
from . import onnxrt
from .onnxrt import OnnxSession, is_onnx
from .tflite import Backend, TFLiteSession, get_backend, open_tflite
from .tflite_file import is_tflite
from .tflite_info import ModelInfo, read_model_info

PROBE_TIMEOUT_S = 120.0
_MIN_SIZE = 16  # root offset + "TFL3" + the smallest table header
_memory: dict[str, str] = {}  # key -> "ok" | "ok-nodelegates" | refusal message
_lock = threading.Lock()


def check_structure(data: bytes, label: str) -> ModelInfo | None:
    """Refuse bytes that cannot be a .tflite flatbuffer or whose indices point outside it, without
    any interpreter; returns what the flatbuffer holds (for ``check_memory``).

    The same validation ``edgekit check`` and ``edgekit inspect`` run (tflite_info.read_model_info).
    Where the flatbuffer schema is missing (tflite-runtime alone, on armv7l: the schema module comes
    with ai-edge-litert), only the header is checked and None returned; the probe still runs.
    """
    if len(data) < _MIN_SIZE:
        raise ModelLoadError(f"{label}: {len(data)} bytes is too small for a .tflite model; re-export it")
    if is_onnx(data):  # ONNX Runtime checks the protobuf itself; the probe is the guard against crashes
        return None
    if not is_tflite(data):
        raise ModelLoadError(f"{label}: not a TensorFlow Lite model (no TFL3 identifier); check the file")
    root = int.from_bytes(data[:4], "little")
    if root < 8 or root + 4 > len(data):
        raise ModelLoadError(f"{label}: truncated or corrupt .tflite (root offset {root} of {len(data)} bytes); "
                             "copy the file again")
    try:
        return read_model_info(data, label, tflm=False)  # the memory check reads TFLite's plan only
    except MissingDependencyError:
        return None


class _Known:
    """A structure check passed earlier for the same bytes: what check_memory needs from it."""

    def __init__(self, arena_bytes: int):
        self.arena_bytes = arena_bytes


def _checked_structure(data: bytes, label: str):
    """``check_structure``, once per model file and machine: a pass is remembered by the bytes' sha256
    (in memory and beside the probe verdicts) with the arena estimate check_memory needs. The walk over
    every index of a large model costs tens of ms in Python; the interpreter parses the file anyway."""
    key = digest_of(data).hex() + ".structure"
    with _lock:
        known = _memory.get(key)
    if known is None:
        try:
            known = (cache_dir() / key).read_text().strip()
        except OSError:
            known = None
    if known is not None and known.isdigit():
        with _lock:
            _memory[key] = known  # the next load of these bytes in this process reads no file
        return _Known(int(known))
    info = check_structure(data, label)
    if info is None:  # ONNX, or no schema here to walk with: nothing was checked, nothing to remember
        return None
    text = str(int(info.arena_bytes))
    with _lock:
        _memory[key] = text
    try:
        path = cache_dir() / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError:
        pass
    return info


def proc_bytes(path: str, key: str) -> int | None:
    """A ``KEY: N kB`` line of a Linux /proc file in bytes, or None where it cannot be read.

    Example: ``proc_bytes("/proc/self/status", "VmHWM:")`` (this process's peak resident memory)."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_limit(max_mb: float | None) -> tuple[int | None, str]:
    """The byte limit for a model's memory, and what set it (``Policy(max_model_memory_mb)`` or the RAM)."""
    if max_mb is None:
        return available_memory(), "the RAM available now"
    return int(max_mb * 2**20), "Policy(max_model_memory_mb=...)"


def available_memory() -> int | None:
    """Bytes of RAM available now (Linux MemAvailable, else free pages), or None when unknown."""
    avail = proc_bytes("/proc/meminfo", "MemAvailable:")
    if avail is not None:
        return avail
    return _free_bytes() or None


def _free_bytes() -> int:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def check_memory(info: ModelInfo | None, label: str, max_mb: float | None = None) -> None:
    """Refuse a model whose tensors need more than ``max_mb`` MB (None: the RAM available now),
    before allocate_tensors tries: a hostile shape would otherwise exhaust memory or get the
    process killed. The need is the arena TFLite would plan (edgekit.engine.arena: tensors and kernel scratch).

    Example:
        >>> check_memory(read_model_info(data, "m.tflite"), "m.tflite", max_mb=1 / 1024)   # doctest: +SKIP
        ModelLoadError: m.tflite: its tensors need ~12.0 KB, over the 1.0 KB limit ...
    """
    if info is None:  # no schema here to read the tensors with (check_structure)
        return
    if max_mb is None and info.arena_bytes <= _free_bytes() // 2:
        return  # fits in half the free pages (one system call): no /proc/meminfo read (40 us) to tell
    limit, where = memory_limit(max_mb)
    if limit is not None and info.arena_bytes > limit:
        raise ModelLoadError(f"{label}: its tensors need ~{_size(info.arena_bytes)}, over the {_size(limit)} "
                             f"limit ({where}); refused before allocating them")


def _size(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n / 1024:,.1f} KB"


def cache_dir() -> Path:
    return fsutil.cache_dir("verified")


# [(bytes object, its sha256)]: one load hashes its bytes once, not per step. The pair is one tuple, read and
# replaced whole, so a thread never sees one model's bytes with another's digest.
_last_digest: list = [(None, b"")]


def digest_of(data: bytes) -> bytes:
    """sha256 of ``data``, remembered for the last bytes object (immutable: the same object, the same digest)."""
    seen, digest = _last_digest[0]
    if seen is data:
        return digest
    digest = hashlib.sha256(data).digest()
    if type(data) is bytes:  # a bytearray could change under the same identity
        _last_digest[0] = (data, digest)
    return digest


def _key(data: bytes, be: Backend, delegates: bool | None, spec: str = "") -> str:
    tag = f"{be.name}-{be.version}-{delegates}{spec}".encode()
    return hashlib.sha256(digest_of(data) + tag).hexdigest()


def probe_spec(threads: int | None = None, shapes: list[list[int]] | None = None,
               fill: dict[str, list[float]] | None = None, max_mb: float | None = None,
               load: dict | None = None) -> str:
    """What the probe runs besides the default zeros, as the JSON argument of ``_probe`` ("" for nothing).

    threads: the app's interpreter thread count (None: the interpreter's default);
    shapes: one shape per input, in the interpreter's input order, to resize to before running;
    fill: per-channel values by input name (signature key or tensor name) for a second, calibration-like run;
    max_mb: the memory limit for the model's tensors (None: the RAM available, see ``check_memory``);
    load: an external delegate and a signature (``open_tflite``'s delegate, delegate_options, signature):
    the probe loads the delegate too, so a delegate that crashes takes only the probe down.
    """
    if threads is None and not shapes and not fill and max_mb is None and not load:
        return ""
    spec = {"threads": threads, "shapes": shapes, "fill": fill}
    if max_mb is not None:  # only then: the cache keys of existing verdicts stay as they were
        spec["max_mb"] = max_mb
    if load:
        spec["load"] = load
    return json.dumps(spec, sort_keys=True)


def _edgekit_path() -> str:
    # The probe must import this same edgekit, also when it runs from a source tree.
    return str(Path(__file__).resolve().parents[2])


def run_probe(data: bytes, be: Backend, delegates: bool | None, timeout: float = PROBE_TIMEOUT_S,
              spec: str = "") -> str:
    """Run the probe process; returns "ok"/"ok-nodelegates" or a one-line refusal reason.

    ``spec``: from probe_spec (threads, a new input shape, calibration-like values)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_edgekit_path(), env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    mode = {None: "auto", True: "on", False: "off"}[delegates]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "edgekit.engine._probe", be.name, mode] + ([spec] if spec else []),
            input=data, capture_output=True, timeout=timeout, env=env,
        )
    except subprocess.TimeoutExpired:
        return f"the probe did not finish within {timeout:g} s (hangs on load or first invoke)"
    out = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode == 0 and out and out[-1].startswith("ok"):
        return out[-1]
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        return f"crashed the probe process ({name}): the file is corrupt or hostile"
    return out[-1] if out else f"the probe exited with code {proc.returncode}"


def verdict(data: bytes, be: Backend, delegates: bool | None, *, use_disk: bool = True, spec: str = "") -> str:
    """The cached probe verdict for these bytes on this backend and ``spec`` (runs the probe on a miss)."""
    key = _key(data, be, delegates, spec)
    with _lock:
        if key in _memory:
            return _memory[key]
    disk = cache_dir() / key
    if use_disk:
        try:
            cached = disk.read_text().strip()
            if cached.startswith("ok"):
                with _lock:
                    _memory[key] = cached
                return cached
        except OSError:
            pass
    result = run_probe(data, be, delegates, spec=spec) if spec else run_probe(data, be, delegates)
    with _lock:
        _memory[key] = result
    if use_disk and result.startswith("ok"):  # only passes: a timeout on a busy day must not stick
        try:
            disk.parent.mkdir(parents=True, exist_ok=True)
            disk.write_text(result)
        except OSError:
            pass
    return result


def open_checked(data: bytes, *, label: str = "<bytes>", num_threads: int | None = None,
                 backend: str | Backend | None = None, delegates: bool | None = None,
                 load: dict | None = None) -> TFLiteSession | OnnxSession:
    """Create, allocate and run once on zero inputs; with ``delegates=None`` drop XNNPACK if it fails.

    Zeros are set explicitly: allocated input buffers are not guaranteed to be zero, and garbage
    (say, a gather index) can fail a model that is fine. This is what the probe runs, too.
    ``load``: {"delegate": library, "delegate_options": {...}, "signature": name} (.tflite only).
    """
    if is_onnx(data):  # one engine for ONNX files: a TFLite ``backend`` (say, shared with a fallback) is moot
        if load:
            raise UsageError(f"{label}: an external delegate or a signature applies to .tflite models only")
        return onnxrt.open_onnx(data, threads=num_threads, check_run=True, label=label)
    return open_tflite(data, threads=num_threads, backend=backend, default_delegates=delegates, check_run=True,
                       label=label, **(load or {}))


def load_session(data: bytes, *, label: str = "<bytes>", num_threads: int | None = None,
                 backend: str | Backend | None = None, probe: bool = True,
                 fill: dict[str, list[float]] | None = None,
                 max_mb: float | None = None, load: dict | None = None) -> TFLiteSession | OnnxSession:
    """A session for ``data``, after the structural and memory checks and (by default) the probe.

    ``fill``: calibration-like values per input name (the manifest's per-channel means) for the probe;
    ``max_mb``: the memory limit for the tensors (``check_memory``); ``load``: an external delegate and
    a signature (``open_checked``), loaded by the probe first.

    Example:
        >>> load_session(data, load={"delegate": "libedgetpu.so.1", "signature": "serving_default"})  # doctest: +SKIP
    """
    check_memory(_checked_structure(data, label), label, max_mb)
    if is_onnx(data):
        be = onnxrt.get_backend()
    else:
        be = backend if isinstance(backend, Backend) else get_backend(backend)
    delegates: bool | None = None
    if probe:
        result = verdict(data, be, None, spec=probe_spec(num_threads, None, fill, max_mb, load))
        if not result.startswith("ok"):
            raise ModelLoadError(f"{label}: refused by the load probe: {result}")
        # Load the way the probe did: if it had to drop XNNPACK, so do we.
        delegates = not result.startswith("ok-nodelegates")
    return open_checked(data, label=label, num_threads=num_threads, backend=be, delegates=delegates, load=load)
