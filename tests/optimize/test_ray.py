"""--ray: the same search as tasks on a real local Ray head (127.0.0.1), same results as local processes."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from optimize_helpers import cli

# not imported here: Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is first imported
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="install edgekit[ray] (the dev extra has it)")

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # keeps Ray on 127.0.0.1 (FACTS.md)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_using(marker: str) -> list[int]:
    """Processes of this test's Ray head: their command lines carry its own temp dir."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if marker.encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


@pytest.fixture
def ray_head(monkeypatch):
    for k, v in LOOPBACK.items():
        monkeypatch.setenv(k, v)
    temp = tempfile.mkdtemp(prefix="ekray", dir="/tmp")  # short: Ray's unix socket paths have a length limit
    ray_bin = Path(sys.executable).with_name("ray")
    env = {**os.environ, **LOOPBACK, "PYTHONPATH": str(ROOT)}  # the workers import this edgekit
    try:
        for attempt in range(3):  # a free port can be taken by another process before Ray binds it
            port = free_port()
            res = subprocess.run([str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
                                  "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
                                  f"--temp-dir={temp}"], env=env, capture_output=True, text=True, timeout=180)
            if res.returncode == 0:
                break
        else:
            pytest.fail(f"ray start failed 3 times; last:\n{(res.stderr or res.stdout)[-3000:]}")
        yield f"127.0.0.1:{port}"
    finally:  # also after a failed start: it can leave Ray's monitors running
        # stop only this head: `ray stop` would end every Ray process on the machine
        for sig in (15, 9):
            for pid in pids_using(temp):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while pids_using(temp) and time.monotonic() < deadline:
                time.sleep(0.2)
        shutil.rmtree(temp, ignore_errors=True)


def summary(doc):
    return {r["name"]: (r["sha256"], r["size_bytes"], round(r["drop_points"], 6)) for r in doc["rows"]}


@pytest.mark.slow
def test_ray_results_match_a_local_run(tmp_path, ray_head, digits_keras, digits_npz):
    args = ["-c", digits_npz["calib"], "-e", digits_npz["eval"], "--candidates", "fp32,dynamic",
            "--float-top-k", "0", "--max-size-kb", "100", "--runs", "30", "--json"]
    code, text, err = cli("optimize", digits_keras, "-o", tmp_path / "local" / "m.tflite", *args)
    assert code == 0, err
    local = json.loads(text)
    code, text, err = cli("optimize", digits_keras, "-o", tmp_path / "ray" / "m.tflite", "--ray", ray_head, *args)
    assert code == 0, err
    remote = json.loads(text)
    assert remote["executor"] == "ray" and local["executor"] == "local"
    assert remote["trials_run"] == 2  # converted on the cluster, not reused from the local journal
    assert summary(remote) == summary(local)
    assert remote["selection"]["pick"] == local["selection"]["pick"] == "dynamic"
    assert (tmp_path / "ray" / "m.tflite").read_bytes() == (tmp_path / "local" / "m.tflite").read_bytes()


def test_ray_connection_failure_is_one_line(tmp_path, digits_keras, digits_npz, monkeypatch):
    for k, v in LOOPBACK.items():
        monkeypatch.setenv(k, v)
    code, _, err = cli("optimize", digits_keras, "-o", tmp_path / "m.tflite", "-e", digits_npz["eval"],
                       "--ray", f"127.0.0.1:{free_port()}", "--candidates", "fp32")
    assert code == 2 and "--ray" in err and "Traceback" not in err
