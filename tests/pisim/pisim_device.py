"""The emulated device as the tests see it (a PiDevice per running scripts/pi-sim flavour) and helpers.

Example:
    >>> dev.run("uname -m").stdout        # doctest: +SKIP
    'aarch64\\n'
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class PiDevice:
    """A running emulated device: ``profile_options`` is pi-sim's last line, split."""

    name: str  # the pi-sim flavour: aarch64, aarch64-bookworm or armv7l
    profile_options: list[str]
    start_output: str

    def option(self, name: str) -> str:
        opts = self.profile_options
        return opts[opts.index(name) + 1]

    @property
    def python(self) -> str:
        return self.option("--remote-python")

    def ssh_command(self, remote: str) -> list[str]:
        return ["ssh", "-i", self.option("--ssh-key"), "-p", self.option("--ssh-port"), "-o", "BatchMode=yes",
                "-o", self.option("--ssh-option"), "-o", "LogLevel=ERROR", self.option("--host"), remote]

    def run(self, remote: str, *, input: bytes | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run a shell command on the device; stdout and stderr as text."""
        res = subprocess.run(self.ssh_command(remote), input=input, capture_output=True, timeout=timeout)
        return subprocess.CompletedProcess(res.args, res.returncode, res.stdout.decode(errors="replace"),
                                           res.stderr.decode(errors="replace"))

    def put(self, local: Path, remote: str) -> str:
        res = self.run(f"mkdir -p $(dirname {shlex.quote(remote)}) && cat > {shlex.quote(remote)}",
                       input=Path(local).read_bytes())
        assert res.returncode == 0, res.stderr
        return remote

    def python_json(self, code: str, *args: str, timeout: float = 600):
        """Run ``code`` with the device's /venv python; it must print one JSON document last."""
        remote = shlex.join([self.python, "-c", code, *args])
        res = self.run(remote, timeout=timeout)
        assert res.returncode == 0, f"on the {self.name} device: {res.stderr[-2000:]}"
        return json.loads(res.stdout.strip().splitlines()[-1])


def host_top1(model: Path, x) -> list[int]:
    """Top-1 class per sample from EdgeModel on this (x86) machine."""
    import numpy as np

    from edgekit.runtime import EdgeModel

    with EdgeModel.load(model) as m:
        return [int(i) for i in np.argmax(m.predict(x).outputs[0], axis=1)]


# The device side of the prediction tests: EdgeModel over a batch, top-1 per sample and the backend.
DEVICE_TOP1 = """
import json, sys
import numpy as np
from edgekit.runtime import EdgeModel
x = np.load(sys.argv[2])
with EdgeModel.load(sys.argv[1]) as m:
    pred = m.predict(x)
    backend, version = m.health()["model"]["backend"].split(" ")  # "ai-edge-litert 2.3.0"
    print(json.dumps({"top1": [int(i) for i in np.argmax(pred.outputs[0], axis=1)],
                      "backend": backend, "version": version, "sources": sorted(set(pred.sources))}))
"""


def put_model(device: PiDevice, model: Path, folder: str) -> str:
    """Copy a .tflite and its manifest into ``folder`` on the device; returns the model's remote path."""
    from edgekit.manifest import manifest_path_for

    device.put(model, f"{folder}/{model.name}")
    manifest = manifest_path_for(model)
    device.put(manifest, f"{folder}/{manifest.name}")
    return f"{folder}/{model.name}"
