"""Signed models (OpenSSF model-signing, EC keys, offline): signed deploys go in; a changed byte of the
manifest, an unsigned model and another key's signature are refused, at deploy, at activation and by
EdgeModel.load(trusted_keys=...)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgekit.errors import SignatureError
from edgekit.fsutil import sha256_file
from edgekit.manifest import manifest_path_for
from edgekit.runtime import EdgeModel
from edgekit.store import serve
from edgekit.signing import sign, signature_path_for, verify
from edgekit.store import ModelStore


def flip_manifest_byte(model):
    """Change exactly one byte of the manifest, keeping it valid JSON ("classification" -> "classificatioN")."""
    p = manifest_path_for(model)
    data = p.read_bytes()
    i = data.index(b'"classification"') + len('"classificatio')
    p.write_bytes(data[:i] + b"N" + data[i + 1:])
    assert sum(a != b for a, b in zip(data, p.read_bytes())) == 1


@pytest.fixture()
def signed(good, keys, copy_model):
    m = copy_model(good, "signed")
    sign(m, keys["ours"][0])
    return m


def test_sign_and_verify(signed, keys):
    assert signature_path_for(signed).exists()
    assert verify(signed, [keys["other"][1], keys["ours"][1]]) == str(keys["ours"][1])


def test_deploy_into_a_store_that_trusts_the_key(tmp_path, signed, keys, cli):
    store = tmp_path / "s"
    code, out, err = cli("deploy", signed, "--store", store, "--trust", keys["ours"][1], "--json")
    assert code == 0, err
    doc = json.loads(cli("status", "--store", store, "--json")[1])
    assert doc["active"]["signed"] is True and doc["active"]["verified"] is True and len(doc["trusted_keys"]) == 1
    with serve(store) as served:  # verified again when served
        assert served.sha256 == json.loads(out)["sha256"]


@pytest.mark.parametrize("case", ["manifest-byte", "unsigned", "other-key", "model-byte"])
def test_refused_at_deploy(tmp_path, good_int8, signed, keys, cli, copy_model, case):
    store = tmp_path / "s"
    assert cli("deploy", signed, "--store", store, "--trust", keys["ours"][1])[0] == 0
    m = copy_model(good_int8, "candidate")
    if case == "manifest-byte":
        sign(m, keys["ours"][0])
        flip_manifest_byte(m)
    elif case == "other-key":
        sign(m, keys["other"][0])
    elif case == "model-byte":  # model and manifest both changed consistently: only the signature can tell
        sign(m, keys["ours"][0])
        before = sha256_file(m)
        data = bytearray(m.read_bytes())
        data[-1] ^= 1
        m.write_bytes(bytes(data))
        man = manifest_path_for(m)
        man.write_text(man.read_text().replace(before, sha256_file(m)))  # consistent again, whatever the schema
    code, _, err = cli("deploy", m, "--store", store)  # the store remembers the key it trusts
    assert code == 2
    if case == "unsigned":
        assert "unsigned" in err and "edgekit sign" in err
    elif case == "other-key":
        assert "does not verify with any trusted key" in err and "Key mismatch" in err
    else:
        assert "changed" in err
    st = ModelStore(store)
    assert st.index()["active"]["sha256"] == sha256_file(signed)
    assert st.incidents()[-1]["kind"] == "signature" and st.incidents()[-1]["stage"] == "deploy"
    assert len(list(st.layout.objects.iterdir())) == 1  # nothing of the refused model got in


def test_refused_at_activation_when_changed_in_the_store(tmp_path, signed, keys, digits, copy_model, good_int8):
    st = ModelStore(tmp_path / "s", create=True)
    st.trust(keys["ours"][1])
    st.deploy(signed)
    cand = copy_model(good_int8, "cand")
    sign(cand, keys["ours"][0])
    sha = st.deploy(cand, canary={"calls": 10})["sha256"]
    flip_manifest_byte(st.layout.object(sha) / "model.tflite")  # someone edits the stored manifest
    assert st.promote(sha, {"compared": 10}) is False
    assert st.index()["active"]["sha256"] != sha and st.history()[-1]["event"] == "reject"
    assert any(i["kind"] == "signature" and i["stage"] == "activation" for i in st.incidents())


def test_edgemodel_load_with_trusted_keys(tmp_path, signed, keys, good, copy_model):
    with EdgeModel.load(signed, trusted_keys=[keys["ours"][1]]) as m:
        assert m.sha256
    log = tmp_path / "incidents.jsonl"
    with pytest.raises(SignatureError, match="does not verify"):
        EdgeModel.load(signed, trusted_keys=[keys["other"][1]], incident_log=log)
    assert json.loads(log.read_text().splitlines()[-1])["kind"] == "signature"
    with pytest.raises(SignatureError, match="unsigned"):
        EdgeModel.load(copy_model(good, "plain"), trusted_keys=[keys["ours"][1]])
    flip_manifest_byte(signed)
    with pytest.raises(SignatureError, match="model.manifest.json changed"):
        EdgeModel.load(signed, trusted_keys=[keys["ours"][1]])


def test_a_signed_load_parses_the_bytes_that_verified_never_the_manifest_cache(tmp_path, signed, keys, monkeypatch):
    """The parsed-manifest cache is trusted like the probe verdicts; a signed load trusts only the signature."""
    import dataclasses
    import pickle

    from edgekit import manifest_cache

    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    real = manifest_cache.find(signed)
    (entry,) = (tmp_path / "cache" / "manifests").iterdir()
    entry.write_bytes(pickle.dumps(dataclasses.replace(real, task="regression")))  # a forged entry
    assert manifest_cache.find(signed).task == "regression"  # what an unsigned load would read
    with EdgeModel.load(signed, trusted_keys=[keys["ours"][1]]) as m:
        assert m.manifest == real and m.manifest.task == "classification"


def test_cli_sign(tmp_path, good, keys, cli, copy_model):
    m = copy_model(good)
    code, out, _ = cli("sign", m, "--key", keys["ours"][0], "--json")
    assert code == 0 and json.loads(out)["signature"] == str(signature_path_for(m))
    code, _, err = cli("sign", m, "--key", tmp_path / "nokey.pem")
    assert code == 2 and "private key not found" in err
    code, _, err = cli("sign", m, "--key", keys["ours"][1])  # a public key is not a signing key
    assert code == 2 and "cannot sign with this key" in err


def test_signing_without_the_package_says_what_to_install(tmp_path, good, keys, copy_model):
    m = copy_model(good)
    block = ("import sys\nclass _B:\n    def find_spec(self, n, p=None, t=None):\n"
             "        if n.startswith('model_signing'): raise ImportError('blocked: ' + n)\n"
             "sys.meta_path.insert(0, _B())\nfrom edgekit.cli import main\n"
             f"sys.exit(main(['sign', {str(m)!r}, '--key', {str(keys['ours'][0])!r}]))\n")
    r = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True)
    assert r.returncode == 2 and "pip install 'edgekit[sign]'" in r.stderr and "Traceback" not in r.stderr


def _without(blocked: str, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where every module under ``blocked`` fails to import
    (a runtime-only install: no model-signing, or model-signing without pyOpenSSL)."""
    block = ("import sys\nclass _B:\n    def find_spec(self, n, p=None, t=None):\n"
             f"        if n.split('.')[0] == {blocked!r}: raise ImportError('No module named ' + repr(n))\n"
             "sys.meta_path.insert(0, _B())\n")
    return subprocess.run([sys.executable, "-c", block + code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("blocked", ["model_signing", "OpenSSL"])
def test_a_runtime_only_install_meeting_a_signed_store_says_which_extra(tmp_path, signed, keys, cli, blocked):
    """Issue 17 item 5: one line naming edgekit[sign], never a traceback or a bare "does not verify"."""
    store = tmp_path / "s"
    assert cli("deploy", signed, "--store", store, "--trust", keys["ours"][1])[0] == 0
    for code in (f"from edgekit.store import serve\nserve({str(store)!r})\n",
                 f"from edgekit.runtime import EdgeModel\n"
                 f"EdgeModel.load({str(signed)!r}, trusted_keys=[{str(keys['ours'][1])!r}])\n",
                 f"from edgekit.cli import main\nsys.exit(main(['status', '--store', {str(store)!r}]))\n"):
        code = ("from edgekit.errors import EdgekitError\ntry:\n" + "".join(f"    {line}\n" for line in code.splitlines())
                + "except EdgekitError as err:\n    print(type(err).__name__ + ': ' + str(err), file=sys.stderr)\n"
                "    sys.exit(2)\n")
        r = _without(blocked, code)
        if "status" in code:  # a report: it says the signature was not checked, and why
            assert "NOT CHECKED" in r.stdout and "pip install 'edgekit[sign]'" in r.stdout, r.stdout[-1500:]
            assert "DOES NOT VERIFY" not in r.stdout and "Traceback" not in r.stderr, r.stdout + r.stderr
            continue
        assert r.returncode != 0 and "pip install 'edgekit[sign]'" in r.stderr, r.stdout[-1500:] + r.stderr[-2000:]
        assert "Traceback" not in r.stderr and "does not verify" not in r.stderr, r.stdout[-1500:] + r.stderr[-2000:]
