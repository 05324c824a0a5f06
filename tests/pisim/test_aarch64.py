"""64-bit Raspberry Pi OS under emulation: runtime-only edgekit on the device, for both OS releases.

Each test runs on scripts/pi-sim's aarch64 roots: Debian 13 trixie (Python 3.13, the current image) and
Debian 12 bookworm (Python 3.11, still on many Pis). /venv has edgekit installed from this checkout with
its runtime dependencies (numpy, Pillow, psutil, typer, ai-edge-litert) and no TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pisim_device import DEVICE_TOP1, REPO, host_top1, put_model

FLAVOURS = {"aarch64": ("trixie", "3.13."), "aarch64-bookworm": ("bookworm", "3.11.")}
pytestmark = [pytest.mark.pisim(*FLAVOURS), pytest.mark.slow]


@pytest.fixture(scope="module", params=list(FLAVOURS))
def pi(request, pi_device):
    return pi_device(request.param)


def test_device_is_aarch64_raspberry_pi_os_like_with_the_pi4_cpu(pi):
    facts = pi.python_json(
        "import json, os, platform, sys\n"
        "print(json.dumps({'machine': platform.machine(), 'python': platform.python_version(),"
        " 'qemu_cpu': os.environ.get('QEMU_CPU'), 'os': open('/etc/os-release').read()}))")
    assert facts["machine"] == "aarch64"
    suite, python = FLAVOURS[pi.name]
    assert facts["python"].startswith(python)
    assert f"VERSION_CODENAME={suite}" in facts["os"]
    # sshd passes QEMU_CPU to sessions (SetEnv); qemu reads it at every exec, so /venv/bin/python runs on it
    assert facts["qemu_cpu"] == "cortex-a72"
    cpuinfo = pi.run("cat /proc/cpuinfo").stdout
    # qemu emulates /proc/cpuinfo: CPU part 0xd08 is the Cortex-A72 (without QEMU_CPU it says 0x051, "max")
    assert "CPU part\t: 0xd08" in cpuinfo, cpuinfo[:500]


def test_runtime_imports_with_no_tensorflow(pi):
    ok = pi.run(f"{pi.python} -c \"import edgekit.runtime, sys; assert 'tensorflow' not in sys.modules; print('ok')\"")
    assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr
    tf = pi.run(f"{pi.python} -c 'import tensorflow'")
    assert tf.returncode != 0 and "No module named 'tensorflow'" in tf.stderr
    pkgs = {p["name"].lower() for p in json.loads(pi.run(f"{pi.python} -m pip list --format json").stdout)}
    assert {"edgekit", "ai-edge-litert", "numpy", "pillow", "psutil"} <= pkgs
    assert not {p for p in pkgs if p.startswith(("tensorflow", "tf-", "keras"))}


def test_device_runs_this_checkouts_edgekit(pi):
    """pi-sim reinstalls the checkout when it changes: the device's files are these files."""
    remote = pi.python_json("import edgekit.engine.tflite as b, hashlib, json;"
                            "print(json.dumps(hashlib.sha256(open(b.__file__, 'rb').read()).hexdigest()))")
    assert remote == hashlib.sha256((REPO / "edgekit/engine/tflite.py").read_bytes()).hexdigest()


def test_int8_top1_matches_x86_on_every_held_out_digit(pi, digits, digits_models, tmp_path):
    model = digits_models("int8")
    x = tmp_path / "x_test.npy"
    np.save(x, digits.x_test)
    remote_model = put_model(pi, model, "/tmp/edgekit-test/int8")
    pi.put(x, "/tmp/edgekit-test/x_test.npy")
    device = pi.python_json(DEVICE_TOP1, remote_model, "/tmp/edgekit-test/x_test.npy")
    host = host_top1(model, digits.x_test)
    assert device["backend"] == "ai-edge-litert" and device["sources"] == ["model"]
    matches = sum(a == b for a, b in zip(device["top1"], host))
    print(f"\n{pi.name} vs x86 top-1 (int8, ai-edge-litert {device['version']}): {matches}/{len(host)}")
    assert len(device["top1"]) == len(host) == len(digits.x_test)
    assert matches == len(host)
    assert np.mean(np.array(host) == digits.y_test) > 0.8  # a real model, not a constant answer


def test_profile_over_ssh_reports_the_devices_architecture(pi, digits_models, tmp_path):
    out = tmp_path / "pi.json"
    cmd = [sys.executable, "-c", "from edgekit.cli import entry; entry()", "profile", str(digits_models("int8")),
           *pi.profile_options, "--runs", "30", "--warmup", "3", "--json", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["schema"] == "edgekit.profile/1"
    assert doc["device"] == {"kind": "ssh", "name": "root@127.0.0.1"}
    assert doc["machine"]["arch"] == "aarch64"
    assert doc["machine"]["python"].startswith(FLAVOURS[pi.name][1])
    (row,) = doc["rows"]
    assert (row["interpreter"]["package"], row["interpreter"]["version"]) == ("ai-edge-litert", "2.3.0")
    lat = row["latency_ms"]
    assert lat["count"] == 30 and 0 < lat["min"] <= lat["p50"] <= lat["max"]


def test_onnx_model_gives_the_x86_answers_and_profiles_on_the_device(pi, digits, digits_onnx, tmp_path):
    """ONNX Runtime on the 64-bit Pi (issue 16): EdgeModel's top-1 equals this machine's on every held-out
    digit, and edgekit profile --host measures the .onnx there through the child's onnx_interp."""
    x = tmp_path / "x_test.npy"
    np.save(x, digits.x_test)
    remote_model = put_model(pi, digits_onnx, "/tmp/edgekit-test/onnx")
    pi.put(x, "/tmp/edgekit-test/x_test.npy")
    device = pi.python_json(DEVICE_TOP1, remote_model, "/tmp/edgekit-test/x_test.npy")
    host = host_top1(digits_onnx, digits.x_test)
    assert device["backend"] == "onnxruntime" and device["sources"] == ["model"]
    assert device["top1"] == host
    out = tmp_path / "pi.json"
    cmd = [sys.executable, "-c", "from edgekit.cli import entry; entry()", "profile", str(digits_onnx),
           *pi.profile_options, "--runs", "20", "--warmup", "3", "--json", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(out.read_text())
    (row,) = doc["rows"]
    assert doc["machine"]["arch"] == "aarch64" and row["interpreter"]["package"] == "onnxruntime"
    assert row["latency_ms"]["count"] == 20


# The device side of the Silero test: the held-out windows streamed through EdgeModel and through a bare
# ONNX Runtime session on the device, the state carried from call to call in both.
DEVICE_SILERO = """
import json, sys
import numpy as np
import onnxruntime as ort
from edgekit.runtime import EdgeModel
windows = np.load(sys.argv[2])
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
bare = ort.InferenceSession(sys.argv[1], sess_options=opts, providers=["CPUExecutionProvider"])
sr, ours, theirs = np.array(16000, np.int64), np.zeros((2, 1, 128), np.float32), np.zeros((2, 1, 128), np.float32)
same, ok, probs = True, 0, []
with EdgeModel.load(sys.argv[1], num_threads=1) as m:
    for x in windows:
        pred = m.predict({"input": x[None], "state": ours, "sr": sr})
        prob, theirs = bare.run(None, {"input": x[None], "state": theirs, "sr": sr})
        same &= bool(np.array_equal(pred["output"], prob) and np.array_equal(pred["stateN"], theirs))
        ok += pred.ok
        ours = pred["stateN"]
        probs.append(float(prob[0, 0]))
    print(json.dumps({"same": same, "ok": ok, "probs": probs, "backend": m.health()["model"]["backend"]}))
"""


def test_silero_vad_equals_bare_onnxruntime_and_profiles_on_the_device(pi, tmp_path):
    """A published multi-input ONNX model (Silero VAD: a state [2, batch, 128] and a scalar sample rate)
    adopted here, streamed through EdgeModel on the device with the state carried: outputs equal to the
    device's bare ONNX Runtime session, probabilities within 1e-4 of this machine's; profile --host with
    one call's inputs."""
    import published_models as published

    model = published.adopted_silero(tmp_path / "silero")
    windows = np.load(tmp_path / "silero" / "stream.npy")
    remote_model = put_model(pi, model, "/tmp/edgekit-test/silero")
    pi.put(tmp_path / "silero" / "stream.npy", "/tmp/edgekit-test/silero/stream.npy")
    device = pi.python_json(DEVICE_SILERO, remote_model, "/tmp/edgekit-test/silero/stream.npy")
    host = published.silero_stream(model, windows[:, published.SILERO_CONTEXT:])["prob"]
    assert device["backend"].startswith("onnxruntime") and device["same"] is True
    assert device["ok"] == len(windows) == 40
    assert np.abs(np.array(device["probs"]) - host).max() < 1e-4
    out = tmp_path / "pi.json"
    cmd = [sys.executable, "-c", "from edgekit.cli import entry; entry()", "profile", str(model),
           *pi.profile_options, "--input", str(tmp_path / "silero" / "call.npz"), "--runs", "50", "--warmup", "5",
           "--threads", "1", "--json", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(out.read_text())
    (row,) = doc["rows"]
    assert doc["machine"]["arch"] == "aarch64" and row["interpreter"]["package"] == "onnxruntime"
    assert [(i["name"], i["shape"]) for i in row["inputs"]] == [("input", [1, 576]), ("state", [2, 1, 128]),
                                                                ("sr", [])]
    lat = row["latency_ms"]
    assert lat["count"] == 50
    print(f"\n{pi.name}: Silero VAD through EdgeModel equal to bare ONNX Runtime on 40/40 calls; profile --host "
          f"(1 thread, 50 runs, emulated): p50 {lat['p50']:.3f} ms, p95 {lat['p95']:.3f} ms")
