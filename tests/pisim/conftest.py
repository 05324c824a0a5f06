"""Emulated Raspberry Pi devices for the tests: scripts/pi-sim, started once per session and stopped after.

Tests ask for ``pi_device(FLAVOUR)``: "aarch64" (trixie), "aarch64-bookworm" or "armv7l" (bookworm).
The first request starts every flavour the selected tests need (``@pytest.mark.pisim(FLAVOUR, ...)``) in
parallel, so the cold builds (debootstrap, minutes each) overlap instead of adding up; later requests wait
for their own.
Nothing skips when a tool is missing: pi-sim installs what it needs (it needs root and the network
to the Debian mirror and PyPI on its first run; after that its cache makes a start take seconds).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pisim_device import REPO, PiDevice  # tests/pisim is on sys.path (prepend import mode), like tests/profile

PISIM = REPO / "scripts" / "pi-sim"
START_TIMEOUT_S = 40 * 60  # a cold build on a busy 2-core machine; warm starts take seconds


def flavour_args(name: str) -> list[str]:
    """pi-sim's flavour names ("aarch64", "aarch64-bookworm") -> its options."""
    arch, _, suite = name.partition("-")
    return ["--arch", arch] + (["--suite", suite] if suite else [])


def _arches(config) -> list[str]:
    return sorted(getattr(config, "_pisim_arches", set()))


def pytest_collection_modifyitems(config, items):
    config._pisim_arches = {a for item in items for m in item.iter_markers("pisim") for a in m.args}


class _Devices:
    def __init__(self, arches: list[str]):
        self.arches = arches
        self.procs: dict[str, subprocess.Popen] = {}
        self.devices: dict[str, PiDevice] = {}

    def _spawn(self, arch: str) -> None:
        if arch not in self.procs:
            cmd = [sys.executable, str(PISIM), "start", *flavour_args(arch), "--checkout", str(REPO)]
            self.procs[arch] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def get(self, arch: str) -> PiDevice:
        if arch in self.devices:
            return self.devices[arch]
        for a in self.arches or [arch]:
            self._spawn(a)  # every flavour the session needs, at once
        self._spawn(arch)
        proc = self.procs[arch]
        try:
            out, err = proc.communicate(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"scripts/pi-sim start {' '.join(flavour_args(arch))} took over {START_TIMEOUT_S} s")
        if proc.returncode != 0:
            pytest.fail(f"scripts/pi-sim start {' '.join(flavour_args(arch))} failed ({proc.returncode}):\n"
                        f"{err[-3000:]}")
        last = out.strip().splitlines()[-1]
        assert last.startswith("--host "), f"pi-sim's last line is not the profile options: {last!r}"
        dev = PiDevice(arch, shlex.split(last), out + err)
        print(f"\n{out.strip().splitlines()[0]}", file=sys.stderr)  # pi-sim's own summary and start time
        self.devices[arch] = dev
        return dev

    def stop(self) -> None:
        for arch, proc in self.procs.items():
            if proc.poll() is None:
                proc.communicate()  # a start still building: let it finish so the cache is complete
            subprocess.run([sys.executable, str(PISIM), "stop", *flavour_args(arch)], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def pi_device(request):
    """pi_device(arch) -> PiDevice, started on first use, stopped at the end of the session."""
    devices = _Devices(_arches(request.config))
    yield devices.get
    devices.stop()


@pytest.fixture(scope="session")
def digits_compat(tmp_path_factory, digits_keras, digits) -> Path:
    """The digits CNN as a dynamic-range model converted for tflite-runtime 2.14 (--compat)."""
    import edgekit

    out = tmp_path_factory.mktemp("compat") / "digits-dynamic-compat.tflite"
    return edgekit.convert(digits_keras, out, recipe="dynamic", compat="tflite-runtime-2.14",
                           calibration=digits.x_calib, eval_data=(digits.x_test, digits.y_test),
                           labels=digits.labels, preprocessing="digits", quiet=True).output




@pytest.fixture(scope="session")
def digits_onnx(tmp_path_factory, digits_keras, digits) -> Path:
    """The digits CNN as an fp32 ONNX model (Keras export), with its manifest."""
    import edgekit

    out = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    return edgekit.convert(digits_keras, out, recipe="fp32", calibration=digits.x_calib,
                           eval_data=(digits.x_test, digits.y_test), labels=digits.labels, quiet=True).output
