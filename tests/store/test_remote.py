"""deploy --host: files copied over a real SSH server on 127.0.0.1, the same store code run on the "device"."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edgekit.fsutil import sha256_file
from edgekit.signing import sign
from edgekit.store import ModelStore

WORKTREE = Path(__file__).resolve().parents[2]


@pytest.fixture()
def device(tmp_path, ssh_server):
    """ssh flags for the CLI; the device's python is this venv's, with this checkout on its path."""
    py = tmp_path / "device-python"
    py.write_text(f"#!/bin/sh\nPYTHONPATH={WORKTREE} exec {sys.executable} \"$@\"\n")
    py.chmod(0o755)
    flags = ["--host", ssh_server.host, "--ssh-key", ssh_server.key, "--ssh-port", ssh_server.port,
             "--remote-python", py, "--remote-dir", tmp_path / "device-incoming"]
    for opt in ssh_server.ssh_options:
        flags += ["--ssh-option", opt]
    return flags


def test_deploy_over_ssh(tmp_path, good, good_int8, device, cli):
    store = tmp_path / "device-store"
    code, out, err = cli("deploy", good, "--store", store, *device, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["action"] == "activated" and doc["host"].endswith("@127.0.0.1")
    code, out, err = cli("deploy", good_int8, "--store", store, *device, "--canary-calls", "50",
                         "--max-disagreement", "0.03", "--json")
    assert code == 0, err and json.loads(out)["action"] == "staged"
    idx = ModelStore(store).index()
    assert idx["active"]["sha256"] == sha256_file(good)
    assert idx["candidate"]["sha256"] == sha256_file(good_int8)
    assert idx["candidate"]["canary"] == {"calls": 50, "minutes": None, "budgets": {
        "max_disagreement": 0.03, "max_error_rate": 0.01, "max_ood_rate": 0.1, "max_latency_ms": None}}


def test_signed_deploy_over_ssh_and_a_refusal_comes_back(tmp_path, good, good_int8, keys, device, cli, copy_model):
    store = tmp_path / "device-store"
    m = copy_model(good, "signed")
    sign(m, keys["ours"][0])
    code, out, err = cli("deploy", m, "--store", store, "--trust", keys["ours"][1], *device, "--json")
    assert code == 0, err
    assert ModelStore(store).status()["active"]["signed"] is True
    code, _, err = cli("deploy", good_int8, "--store", store, *device)  # unsigned
    assert code == 2 and "unsigned" in err and "127.0.0.1" in err
    assert ModelStore(store).index()["active"]["sha256"] == sha256_file(m)


def test_unreachable_host(tmp_path, good, cli):
    code, _, err = cli("deploy", good, "--store", tmp_path / "s", "--host", "nobody@127.0.0.1", "--ssh-port", "1",
                       "--ssh-option", "StrictHostKeyChecking=no")
    assert code == 2 and "cannot connect" in err


def test_a_release_bundle_deploys_over_ssh_into_a_store_requiring_evidence(tmp_path, good_int8, keys, device, cli):
    """edgekit release, then deploy the bundle to the device: its store checks the bundle there and keeps the rule."""
    bundle = tmp_path / "bundle"
    code, _, err = cli("release", good_int8, "--target", "raspberry-pi-4", "--key", keys["ours"][0], "--runs", "10",
                       "-o", bundle)
    assert code == 0, err
    store = tmp_path / "device-store"
    code, out, err = cli("deploy", bundle, "--store", store, "--require-evidence", "--target", "raspberry-pi-4",
                         "--trust", keys["ours"][1], *device, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["action"] == "activated" and doc["sha256"] == sha256_file(good_int8)
    code, out, err = cli("status", "--store", store, "--json")
    st = json.loads(out)
    assert st["evidence_required"]["target"] == "raspberry-pi-4" and st["active"]["evidence"]["passed"] is True
    code, _, err = cli("deploy", good_int8, "--store", store, *device)  # a bare model: the device's store says no
    assert code == 2 and "127.0.0.1" in err and "bundle" in err and len(err.strip().splitlines()) == 1
