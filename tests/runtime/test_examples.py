"""The runtime examples run: a real HTTP server on 127.0.0.1, and the camera loop on a folder of frames."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _png(arr01: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.round(arr01[:, :, 0] * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(int8_path, fp32_path, tmp_path_factory):
    http = _module("http_service")
    log = tmp_path_factory.mktemp("http") / "incidents.jsonl"
    srv = http.serve(str(int8_path), str(fp32_path), "127.0.0.1", 0, 2, str(log))
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.model.close()


def _post(url: str, body: bytes, ctype: str = "image/png"):
    req = urllib.request.Request(url + "/predict", data=body, headers={"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_http_service_predicts_flags_and_reports(server, digits, ood_sets):
    status, body = _post(server, _png(digits.x_test[0]))
    assert status == 200 and body["top_k"][0][0][0] == str(digits.y_test[0]) and body["sources"] == ["model"]
    status, body = _post(server, json.dumps({"input": ood_sets["noise"][0].tolist()}).encode(), "application/json")
    assert status == 200 and body["flagged"] == [True] and body["sources"] == ["fallback"]
    status, body = _post(server, b"\x89PNG broken")
    assert status == 400 and "not a readable image" in body["error"]
    status, body = _post(server, b'{"nope": 1}', "application/json")
    assert status == 400
    with urllib.request.urlopen(server + "/health", timeout=30) as resp:
        health = json.loads(resp.read())
    assert health["calls"] >= 2 and health["incidents"]["ood"] >= 1


def test_camera_loop_on_a_folder_of_frames(int8_path, fp32_path, digits, ood_sets, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        (frames / f"{i}.png").write_bytes(_png(digits.x_test[i]))
    (frames / "9-noise.png").write_bytes(_png(ood_sets["noise"][0]))
    r = subprocess.run([sys.executable, str(EXAMPLES / "pi_camera_loop.py"), str(int8_path), "--fallback",
                        str(fp32_path), "--frames", str(frames), "--max-frames", "10", "--report-every", "5"],
                       capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "10 frames in" in r.stdout and "flagged 2" in r.stdout and "-- health:" in r.stdout
    # The log file is created at load; what matters is that both noise frames were logged.
    kinds = [json.loads(ln)["kind"] for ln in (tmp_path / "camera-incidents.jsonl").read_text().splitlines()]
    assert kinds.count("ood") == 2
