"""ONNX models beside .tflite ones: their own manifest and signature names, signed, in the device store."""

from __future__ import annotations

import subprocess

import numpy as np

import edgekit
from edgekit.manifest import Manifest, manifest_path_for
from edgekit.runtime import EdgeModel
from edgekit.signing import sign, signature_path_for
from edgekit.store import ModelStore, ops, serve


def _keypair(folder):
    key, pub = folder / "key.pem", folder / "pub.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return key, pub


def test_a_tflite_and_an_onnx_of_one_source_sit_side_by_side_signed_and_served(digits_keras, digits, tmp_path):
    tfl, onx = tmp_path / "digits.tflite", tmp_path / "digits.onnx"
    for out in (tfl, onx):
        edgekit.convert(digits_keras, out, recipe="fp32", calibration=digits.x_calib, quiet=True)
    # before: both wrote digits.manifest.json, the second replacing the first's (and digits.sig likewise)
    assert manifest_path_for(tfl) != manifest_path_for(onx) and signature_path_for(tfl) != signature_path_for(onx)
    assert Manifest.find(tfl).model.file == "digits.tflite" and Manifest.find(onx).model.file == "digits.onnx"
    key, pub = _keypair(tmp_path)
    sign(tfl, key)
    sign(onx, key)
    x = digits.x_test[:50]
    with EdgeModel.load(onx, trusted_keys=[pub], fallback=tfl) as m:
        want = m.predict(x).outputs[0].argmax(1)
    ops.deploy(onx, tmp_path / "store", trust=[pub])  # a signed store: the signature is checked going in
    st = ModelStore(tmp_path / "store")
    assert (st.layout.object(st.index()["active"]["sha256"]) / "model.onnx").is_file()
    with serve(st.root, reference_rate=0) as served:
        got = served.predict(x)
        assert got.sources == ["model"] * len(x)
        assert np.array_equal(got.outputs[0].argmax(1), want)
        assert served.health()["model"]["backend"].startswith("onnxruntime")
