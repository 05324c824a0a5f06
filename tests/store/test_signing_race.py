"""Signing under attack on the device (issue 15): files swapped while the signature is being checked,
SIGKILL during a check, and the store's trust anchor.

The race tests run a real attacker thread that swaps the manifest (or the model and its manifest) on
disk by atomic renames while EdgeModel.load / the store verify, either the moment a signing folder
appears (the trigger of the original report) or in a tight loop. Whatever the timing, what gets
loaded is either exactly the signed unit or refused: an unsigned field never runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

from edgekit.errors import EdgekitError, SignatureError, TamperedModelError
from edgekit.fsutil import sha256_file
from edgekit.manifest import manifest_path_for
from edgekit.runtime import EdgeModel
from edgekit.signing import sign
from edgekit.store import ModelStore, serve

TRIES = 12
EVIL_LABELS = [f"evil{i}" for i in range(10)]


class Swapper(threading.Thread):
    """The attacker: keeps putting ``evil`` files in place of ``targets`` (atomic renames).

    mode "trigger": swaps to evil as soon as an ``edgekit-signed-*`` folder under ``watch`` holds a
    manifest (the copy an older edgekit verified) and leaves them until ``reset`` (the next try);
    mode "tight": toggles evil and good without pause. ``swaps`` counts the times evil went in.
    """

    def __init__(self, pairs: list[tuple[Path, Path, Path]], mode: str, watch: Path):
        super().__init__(daemon=True)
        self.pairs, self.mode, self.watch = pairs, mode, watch  # (target, good copy, evil copy)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.evil_in = False
        self.swaps = 0

    def put(self, evil: bool) -> None:
        for target, *copies in self.pairs:
            tmp = target.with_name(f".swap-{target.name}")
            shutil.copyfile(copies[evil], tmp)  # a copy: renaming a hard link over itself does nothing
            os.replace(tmp, target)
        self.evil_in = evil
        self.swaps += evil

    def reset(self) -> None:
        """The good files back in place, before the next try."""
        with self.lock:
            self.put(False)

    def signing_folder(self) -> bool:
        return any(d.name.startswith("edgekit-signed-") and (d / "model.manifest.json").exists()
                   for d in self.watch.iterdir())

    def run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                if self.mode == "tight":
                    self.put(not self.evil_in)
                elif not self.evil_in and self.signing_folder():
                    self.put(True)
            if self.mode == "trigger":
                self.stop.wait(0.0001)
        self.reset()

    def __enter__(self) -> "Swapper":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join()


@pytest.fixture()
def private_tmp(tmp_path, monkeypatch):
    """tempfile's folder for this test alone: the attacker watches it (not the shared /tmp)."""
    d = tmp_path / "tmpdir"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def evil_copies(model: Path, good_int8: Path, what: str) -> list[tuple[Path, Path, Path]]:
    """(target, good copy, evil copy) for the manifest, or for model and manifest.

    The evil manifest keeps the model's sha256 (only the signature can tell): other labels and no guard.
    "model": a different model with a manifest that describes it consistently.
    """
    man = manifest_path_for(model)
    doc = json.loads(man.read_text())
    evil_doc = dict(doc, labels=EVIL_LABELS, guard=None)
    pairs = []
    if what == "model":
        evil_model = model.with_name("evil.tflite.bin")
        evil_model.write_bytes(good_int8.read_bytes())
        evil_doc = json.loads(manifest_path_for(good_int8).read_text())
        evil_doc["labels"] = EVIL_LABELS
        pairs.append((model, _keep(model, "good.tflite.bin"), evil_model))
    evil_man = man.with_name("evil.json.bin")
    evil_man.write_text(json.dumps(evil_doc))
    pairs.append((man, _keep(man, "good.json.bin"), evil_man))
    return pairs


def _keep(path: Path, name: str) -> Path:
    copy = path.with_name(name)
    copy.write_bytes(path.read_bytes())
    return copy


def assert_signed(model, want_sha: str, want_labels) -> None:
    assert model.sha256 == want_sha
    assert list(model.manifest.labels) == want_labels != EVIL_LABELS
    assert model.manifest.model.sha256 == want_sha


@pytest.fixture()
def signed(good, keys, copy_model):
    m = copy_model(good, "signed")
    sign(m, keys["ours"][0])
    return m


@pytest.mark.parametrize("mode", ["trigger", "tight"])
@pytest.mark.parametrize("what", ["manifest", "model"])
def test_swap_during_edgemodel_load_never_runs_unsigned(signed, keys, good_int8, private_tmp, mode, what):
    sha, labels = sha256_file(signed), json.loads(manifest_path_for(signed).read_text())["labels"]
    refused = 0
    with Swapper(evil_copies(signed, good_int8, what), mode, private_tmp) as attacker:
        for _ in range(TRIES):
            attacker.reset()
            try:
                with _quiet():
                    m = EdgeModel.load(signed, trusted_keys=[keys["ours"][1]])
            except (SignatureError, TamperedModelError, EdgekitError):
                refused += 1  # the evil bytes were seen, and refused
                continue
            with m:
                assert_signed(m, sha, labels)
    assert attacker.swaps > 0 or mode == "trigger"  # the trigger never fires when nothing is copied
    assert refused < TRIES or mode == "tight"  # the signed unit still loads (a tight loop may starve it)


@pytest.mark.parametrize("mode", ["trigger", "tight"])
@pytest.mark.parametrize("what", ["manifest", "model"])
def test_swap_inside_the_store_never_serves_unsigned(tmp_path, signed, keys, good_int8, private_tmp, mode, what):
    st = ModelStore(tmp_path / "s", create=True)
    st.trust(keys["ours"][1])
    sha = st.deploy(signed)["sha256"]
    labels = json.loads(manifest_path_for(signed).read_text())["labels"]
    stored = st.layout.object(sha) / "model.tflite"
    refused = 0
    with Swapper(evil_copies(stored, good_int8, what), mode, private_tmp) as attacker:
        for _ in range(TRIES):
            attacker.reset()
            try:
                with _quiet():
                    served = serve(st.root, reference_rate=0)
            except EdgekitError:
                refused += 1
                continue
            with served:
                assert_signed(served.model, sha, labels)
    assert refused < TRIES or mode == "tight"


@pytest.mark.parametrize("mode", ["trigger", "tight"])
def test_swap_of_the_source_during_deploy_never_stores_unsigned(tmp_path, signed, keys, good_int8, private_tmp,
                                                                 mode):
    st = ModelStore(tmp_path / "s", create=True)
    st.trust(keys["ours"][1])
    signed_manifest = manifest_path_for(signed).read_bytes()
    with Swapper(evil_copies(signed, good_int8, "manifest"), mode, private_tmp) as attacker:
        for _ in range(TRIES):
            attacker.reset()
            try:
                sha = st.add(signed)
            except EdgekitError:
                continue
            assert (st.layout.object(sha) / "model.manifest.json").read_bytes() == signed_manifest
            st.verify(sha)


@contextlib.contextmanager
def _quiet():
    """Refusals warn (TamperWarning); the race tests count them instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_sigkill_during_verification_leaves_no_copies(tmp_path, signed, keys):
    """A process killed while it verifies leaves nothing in its temporary folder (it used to leave a
    full model copy in /tmp/edgekit-signed-* each time)."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    done = tmp_path / "done"
    child = ("import pathlib, sys, time\nfrom edgekit.signing import verify\n"
             f"for _ in range(30):\n    verify({str(signed)!r}, [{str(keys['ours'][1])!r}])\n"
             f"pathlib.Path({str(done)!r}).touch()\ntime.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", child], env=dict(os.environ, TMPDIR=str(tmp)))
    try:  # killed as soon as anything shows up in its temporary folder, else after 30 verifications
        while not done.exists() and not any(tmp.iterdir()) and proc.poll() is None:
            time.sleep(0.001)  # a copy lived about 10 ms: polled often enough to catch one
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert list(tmp.iterdir()) == []


def test_keys_given_by_the_caller_pin_the_set(tmp_path, good, keys, copy_model):
    """trust/ is writable: a key found there must not widen what the caller trusts."""
    st = ModelStore(tmp_path / "s", create=True)
    st.trust(keys["other"][1])
    foreign = copy_model(good, "foreign")
    sign(foreign, keys["other"][0])
    st.deploy(foreign)
    assert ModelStore(st.root, trusted_keys=[keys["ours"][1]]).trusted_keys() == [keys["ours"][1]]
    with pytest.raises(EdgekitError, match="no stored version verifies"), _quiet():
        serve(st.root, trusted_keys=[keys["ours"][1]])


def test_an_emptied_trust_folder_refuses_instead_of_going_unsigned(tmp_path, signed, good, keys, cli, copy_model):
    store = tmp_path / "s"
    assert cli("deploy", signed, "--store", store, "--trust", keys["ours"][1])[0] == 0
    st = ModelStore(store)
    for k in st.layout.trust.iterdir():
        k.unlink()
    with pytest.raises(EdgekitError, match="none of its trusted keys"):
        serve(store)
    code, _, err = cli("deploy", copy_model(good, "plain"), "--store", store)  # an unsigned model
    assert code == 2 and "none of its trusted keys" in err
    assert st.index()["active"]["sha256"] == sha256_file(signed)
    assert any(i["kind"] == "signature" and "none of its trusted keys" in i["reason"] for i in st.incidents())
    assert "none of its trusted keys" in json.loads(cli("status", "--store", store, "--json")[1])["trust_problem"]
    # a key dropped into trust/ by hand is not one the store was deployed with: still refused
    shutil.copyfile(keys["other"][1], st.layout.trust / "dropped.pem")
    foreign = copy_model(good, "foreign")
    sign(foreign, keys["other"][0])
    code, _, err = cli("deploy", foreign, "--store", store)
    assert code == 2 and "none of its trusted keys" in err
    # putting the store's key back restores service
    assert cli("deploy", signed, "--store", store, "--trust", keys["ours"][1])[0] == 0
    with serve(store) as served:
        assert served.sha256 == sha256_file(signed)


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_a_repaired_index_keeps_the_recorded_trust(tmp_path, signed, good, keys, cli, copy_model, damage):
    """Rebuilding the index from the history (status --repair, or a write after index.json was lost)
    must not forget the keys the store was deployed with: that would turn signature checks off."""
    store = tmp_path / "s"
    assert cli("deploy", signed, "--store", store, "--trust", keys["ours"][1])[0] == 0
    st = ModelStore(store)
    index = st.layout.root / "index.json"
    if damage == "deleted":
        index.unlink()
    else:
        index.write_bytes(index.read_bytes()[:40])
        assert cli("status", "--store", store, "--repair")[0] == 0
    code, _, err = cli("deploy", copy_model(good, "plain"), "--store", store)  # an unsigned model
    assert code == 2 and "signature" in err.lower(), err
    for k in st.layout.trust.iterdir():  # and with trust/ emptied too: still no way back to unsigned
        k.unlink()
    code, _, err = cli("deploy", copy_model(good, "plain2"), "--store", store)
    assert code == 2 and "none of its trusted keys" in err, err
