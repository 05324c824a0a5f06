"""32-bit Raspberry Pi OS (Debian 12 bookworm armhf, Python 3.11) under emulation: tflite-runtime 2.14.

There is no ai-edge-litert wheel for armv7l; the device has Debian's python3-numpy/-pil/-psutil and
tflite-runtime 2.14 in a --system-site-packages venv, as a 32-bit Pi must.
"""

from __future__ import annotations

import shlex

import numpy as np
import pytest

from pisim_device import DEVICE_TOP1, host_top1, put_model

pytestmark = [pytest.mark.pisim("armv7l"), pytest.mark.slow]
FIX = "edgekit convert --compat tflite-runtime-2.14"


@pytest.fixture(scope="module")
def pi(pi_device):
    return pi_device("armv7l")


def test_device_is_armv7l_bookworm(pi):
    facts = pi.python_json("import json, platform, numpy\n"
                           "print(json.dumps([platform.machine(), platform.python_version(), numpy.__version__]))")
    machine, python, numpy_version = facts
    assert machine == "armv7l" and python.startswith("3.11.")
    assert numpy_version.startswith("1.")  # Debian's numpy: tflite-runtime 2.14 needs numpy<2
    assert "CPU part\t: 0xc07" in pi.run("cat /proc/cpuinfo").stdout  # QEMU_CPU=cortex-a7 reached the session


def test_compat_model_loads_and_predicts_on_tflite_runtime(pi, digits, digits_compat, tmp_path):
    x = tmp_path / "x_test.npy"
    np.save(x, digits.x_test)
    remote_model = put_model(pi, digits_compat, "/tmp/edgekit-test/compat")
    pi.put(x, "/tmp/edgekit-test/x_test.npy")
    device = pi.python_json(DEVICE_TOP1, remote_model, "/tmp/edgekit-test/x_test.npy")
    assert (device["backend"], device["version"]) == ("tflite-runtime", "2.14.0")
    assert device["sources"] == ["model"]
    host = host_top1(digits_compat, digits.x_test)
    matches = sum(a == b for a, b in zip(device["top1"], host))
    print(f"\narmv7l tflite-runtime vs x86 ai-edge-litert top-1 (dynamic, --compat): {matches}/{len(host)}")
    assert len(device["top1"]) == len(digits.x_test)
    assert np.mean(np.array(device["top1"]) == digits.y_test) > 0.8
    assert matches >= 0.99 * len(host)  # two interpreters' hybrid kernels: near ties may differ


def _refusal(pi, model, folder: str, digits, tmp_path) -> str:
    """`edgekit run MODEL one-digit.npy` on the device must exit 2 with one line (no traceback): that line."""
    remote_model = put_model(pi, model, folder)
    np.save(tmp_path / "one.npy", digits.x_test[:1])
    pi.put(tmp_path / "one.npy", "/tmp/edgekit-test/one.npy")
    edgekit = pi.python.replace("/python", "/edgekit")
    res = pi.run(shlex.join([edgekit, "run", remote_model, "/tmp/edgekit-test/one.npy"]))
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_incompatible_model_is_refused_naming_the_fix(pi, digits, digits_models, tmp_path):
    line = _refusal(pi, digits_models("dynamic"), "/tmp/edgekit-test/plain", digits, tmp_path)
    assert "tflite-runtime cannot load this model" in line
    assert "FULLY_CONNECTED" in line and FIX in line


def test_image_file_through_debians_pillow(pi, digits, digits_compat, tmp_path):
    """edgekit asks for pillow>=10; bookworm's python3-pil is 9.4, and the runtime decodes images with it."""
    import json

    from PIL import Image

    pixels = (digits.x_test[0, :, :, 0] * 255).round().astype(np.uint8)  # the digits scale: 0..1 = 0..255 / 255
    Image.fromarray(pixels).save(tmp_path / "digit.png")
    expected = host_top1(digits_compat, pixels[None, :, :, None].astype(np.float32) / 255)[0]
    remote_model = put_model(pi, digits_compat, "/tmp/edgekit-test/compat")
    pi.put(tmp_path / "digit.png", "/tmp/edgekit-test/digit.png")
    edgekit = pi.python.replace("/python", "/edgekit")
    res = pi.run(shlex.join([edgekit, "run", remote_model, "/tmp/edgekit-test/digit.png", "--json"]))
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout.splitlines()[0])
    assert doc["sources"] == ["model"] and doc["top_k"][0][0][0] == digits.labels[expected]
    assert pi.python_json("import PIL, json; print(json.dumps(PIL.__version__))").startswith("9.")


def test_an_onnx_model_says_in_one_line_that_armv7l_has_no_onnx_runtime(pi, digits, digits_onnx, tmp_path):
    line = _refusal(pi, digits_onnx, "/tmp/edgekit-test/onnx", digits, tmp_path)
    assert "ONNX Runtime" in line and "aarch64" in line, line
