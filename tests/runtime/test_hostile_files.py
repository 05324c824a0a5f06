"""Hostile files on the load path (issue 15, item 9): FIFOs, device files, giant or deeply nested
manifests, flatbuffers whose indices point outside them, tensors too big for memory.

Each is refused with one ModelLoadError / ManifestError line before any interpreter sees it.
What could hang or eat the machine (a FIFO, /dev/zero) runs in a child process with a timeout
and an address-space cap, so a regression fails the test instead of the test run.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hostile_models import hostile_variants  # tests/ is on sys.path

import edgekit
from edgekit.engine.tflite import get_backend
from edgekit.errors import ManifestError, ModelLoadError
from edgekit.manifest import Manifest, manifest_path_for
from edgekit.runtime import EdgeModel, Policy
from edgekit.engine.safeload import check_structure, probe_spec, run_probe

NO_CHECKS = Policy(verify_sha256=False, on_load="raise")
REPO = Path(edgekit.__file__).resolve().parents[1]


def run_child(code: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python with this edgekit, capped at 4 GiB of address space."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, preexec_fn=cap)


def special_files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "fifo.tflite"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.tflite"
    zero.symlink_to("/dev/zero")
    return {"fifo": fifo, "zero": zero}


LOAD = """
import sys
from edgekit.errors import ModelLoadError
from edgekit.runtime import EdgeModel
try:
    EdgeModel.load(sys.argv[1])
except ModelLoadError as err:
    print(err)
"""


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_fifo_and_dev_zero_are_refused_by_load(tmp_path, kind):
    path = special_files(tmp_path)[kind]
    out = run_child(LOAD, str(path))
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip().endswith("give the model file itself")
    assert "not a regular file" in out.stdout and len(out.stdout.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [["inspect"], ["check", "--target", "raspberry-pi-4"]])
def test_fifo_and_dev_zero_are_refused_by_inspect_and_check(tmp_path, command):
    cli = "import sys; from edgekit.cli import entry; sys.argv[0] = 'edgekit'; entry()"
    for path in special_files(tmp_path).values():
        out = run_child(cli, command[0], str(path), *command[1:])
        assert out.returncode == 2, out.stderr[-500:]
        assert out.stderr.startswith(f"error: {path}: not a regular file") and len(out.stderr.splitlines()) == 1


def _with_manifest(int8_path: Path, tmp_path: Path, text: str) -> Path:
    model = tmp_path / "digits.tflite"
    shutil.copyfile(int8_path, model)
    manifest_path_for(model).write_text(text)
    return model


@pytest.mark.parametrize("text,reason", [("[" * 100_000, "nested too deeply"),
                                         ('{"schema": "edgekit.manifest/2", "n": ' + "7" * 5000 + "}",
                                          "an integer of 5000 digits")])
def test_hostile_manifest_is_a_manifest_error_and_the_fallback_answers(int8_path, fp32_path, digits, tmp_path,
                                                                       text, reason):
    model = _with_manifest(int8_path, tmp_path, text)
    with pytest.raises(ManifestError, match=reason):
        Manifest.find(model)
    with EdgeModel.load(model, fallback=fp32_path) as guarded:
        assert reason in guarded.load_error
        pred = guarded.predict(digits.x_test[:2])
        assert pred.sources == ["fallback", "fallback"] and np.isfinite(pred.outputs[0]).all()


def test_a_120_mb_manifest_is_refused_without_reading_it(int8_path, tmp_path):
    model = _with_manifest(int8_path, tmp_path, "")
    with open(manifest_path_for(model), "wb") as fh:
        fh.truncate(120 << 20)  # sparse: 120 MB of size, no time to write
    start = time.perf_counter()
    with pytest.raises(ManifestError, match="over the 4,194,304-byte cap"):
        Manifest.find(model)
    assert time.perf_counter() - start < 1.0  # the brief's bound; reading and parsing it took 4-85 s


@pytest.fixture(scope="module")
def hostile(int8_path, tmp_path_factory) -> dict[str, Path]:
    return hostile_variants(int8_path, tmp_path_factory.mktemp("hostile"))


@pytest.mark.parametrize("name,reason", [("op-output-minus-1", "operator 0 output refers to tensor -1"),
                                         ("op-input-out-of-range", "operator 1 input refers to tensor 29"),
                                         ("buffer-out-of-range", "buffer refers to buffer 21")])
def test_hostile_indices_are_refused_by_check_structure(hostile, name, reason):
    with pytest.raises(ModelLoadError, match=reason):
        check_structure(hostile[name].read_bytes(), name)
    with pytest.raises(ModelLoadError, match=reason):  # before the probe or any interpreter
        EdgeModel.load(hostile[name], policy=NO_CHECKS)


def test_tensors_over_the_memory_limit_are_refused_before_allocation(int8_path):
    data = int8_path.read_bytes()  # its tensors need ~12 KB (the planned arena, 64-byte aligned: 12.1 KB)
    tiny = Policy(verify_sha256=False, on_load="raise", max_model_memory_mb=0.005)
    with pytest.raises(ModelLoadError, match=r"its tensors need ~12\.1 KB, over the 5\.1 KB limit"):
        EdgeModel.load(int8_path, policy=tiny)
    # the probe refuses too (inspect runs it on files nothing else checked), before allocate_tensors
    result = run_probe(data, get_backend(), None, spec=probe_spec(max_mb=0.005))
    assert "its tensors need" in result and "refused before allocating" in result
    assert run_probe(data, get_backend(), None, spec=probe_spec(max_mb=64)).startswith("ok")
    with EdgeModel.load(int8_path, policy=Policy(max_model_memory_mb=64)) as model:  # a sane limit loads
        assert model.load_error is None


def test_the_size_cap_is_not_allocated_for_a_small_file(int8_path):
    """read() allocates what it is asked for: a 2 GiB cap must not become a 2 GiB buffer (a 32-bit Pi
    has 3 GiB of address space). A child capped at 1 GiB reads the model."""
    code = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from edgekit.errors import ModelLoadError\nfrom edgekit.fsutil import read_bytes\n"
            "print(len(read_bytes(sys.argv[1], ModelLoadError)))")
    out = run_child(code, str(int8_path))
    assert out.returncode == 0 and out.stdout.strip() == str(int8_path.stat().st_size), out.stderr[-300:]


def test_the_memory_check_reads_meminfo_only_when_the_model_is_not_far_below_free_memory(int8_path, monkeypatch):
    """A model under half the free pages passes on one system call; one over it is judged by MemAvailable."""
    from dataclasses import replace

    from edgekit.engine import safeload
    from edgekit.engine.safeload import check_memory, read_model_info

    info = read_model_info(int8_path.read_bytes(), "m.tflite")
    reads = []
    real = safeload.proc_bytes
    monkeypatch.setattr(safeload, "proc_bytes", lambda path, key: reads.append(key) or real(path, key))
    check_memory(info, "m.tflite")
    assert reads == []
    huge = replace(info, arena_bytes=2 * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))  # twice the RAM
    with pytest.raises(ModelLoadError, match="over the .* limit \\(the RAM available now\\)"):
        check_memory(huge, "m.tflite")
    assert reads == ["MemAvailable:"]
