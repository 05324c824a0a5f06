"""edgekit fleet deploy: ring by ring over real stores (four behind the real sshd, one local), each served by its
own running app that judges the canary on live digits (tests/fleet/local_fleet.py).

Rings: canary = pi-1 + gw (local), early = pi-2, all = pi-3 and pi-4 (pi-4 has no ring of its own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import local_fleet  # tests/fleet is on sys.path (prepend import mode)
from edgekit.fsutil import sha256_file
from edgekit.store import ModelStore

os.environ.setdefault("EDGEKIT_CACHE_DIR", tempfile.mkdtemp(prefix="edgekit-test-cache-"))
WORKTREE = Path(__file__).resolve().parents[2]
# The CLI with Python's own Ctrl-C handler: a child of a shell's background job starts with SIGINT ignored
# (no job control: POSIX), so without this the test's SIGINT would never reach it.
INTERRUPTIBLE = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                 "from edgekit.cli import entry; entry()")

# a canary of 60 compared calls per device, judged loosely enough for int8/dynamic vs fp32 (they disagree on
# well under 5% of digits) and far too tight for a model trained on shuffled labels (about 90%)
FLAGS = ["--rings", "canary,early,all", "--calls", "60", "--max-disagreement", "0.1", "--poll", "0.2",
         "--timeout", "180"]
RING_OF = {"canary": ["pi-1", "gw"], "early": ["pi-2"], "all": ["pi-3", "pi-4"]}
RINGS = {"pi-1": "canary", "gw": "canary", "pi-2": "early", "pi-3": "all", "pi-4": None}


@pytest.fixture(scope="module")
def ring_fleet(tmp_path_factory, ssh_server, digits, digits_models, keys):
    """Five stores with the signed fp32 digits model active, each served by its running app."""
    d = tmp_path_factory.mktemp("ring-fleet")
    key, pub = keys["ours"]
    v1 = local_fleet.signed_copy(digits_models("fp32"), d / "models", "v1", key)
    fl = local_fleet.start(d, ssh_server, v1, key, pub, digits.x_test, RINGS)
    try:
        yield fl
    finally:
        fl.stop()


def events(store: Path, sha: str | None = None) -> list[dict]:
    st = ModelStore(store)
    return [e for e in st.history() if sha is None or sha in json.dumps(e)]


def no_trace(store: Path, sha: str) -> None:
    """The store never saw ``sha``: no object, no canary figures, no event, no incident, no copy left."""
    assert not (store / "objects" / sha).exists()
    assert not (store / "canary" / f"{sha}.json").exists()
    assert events(store, sha) == []
    assert sha not in (store / "incidents.jsonl").read_text() if (store / "incidents.jsonl").exists() else True
    assert not (store / "incoming").exists()


@pytest.fixture(scope="module")
def bundle(ring_fleet, digits_models, tmp_path_factory):
    """A signed release bundle of the digits int8 model (edgekit release), signed with the key the stores trust."""
    from edgekit.cli import main

    out = tmp_path_factory.mktemp("release") / "bundle"
    assert main(["release", str(digits_models("int8")), "--target", "raspberry-pi-4", "--key", str(ring_fleet.key),
                 "--runs", "20", "-o", str(out)]) == 0
    return out


@pytest.mark.slow
def test_a_good_candidate_reaches_every_ring_in_order(ring_fleet, bundle, digits_models, cli, tmp_path):
    sha = sha256_file(digits_models("int8"))
    code, out, err = cli("fleet", "deploy", bundle, "--inventory", ring_fleet.inventory, *FLAGS,
                         "--journal", tmp_path / "rollout.json", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["state"] == "done" and [r["state"] for r in doc["rings"]] == ["promoted"] * 3
    assert "ring canary (2 devices: pi-1, gw)" in err and "ring all: promoted" in err
    for name, store in ring_fleet.stores.items():
        assert ModelStore(store).index()["active"]["sha256"] == sha, name
        promote = [e for e in events(store, sha) if e["event"] == "promote"]
        assert len(promote) == 1 and promote[0]["figures"]["compared"] == 60, name  # decided by the device's app
        assert not (store / "incoming").exists()  # the copies went into the store, then away
    from edgekit.store import ops

    evidence = ops.status(ring_fleet.stores["pi-3"])["active"]["evidence"]
    assert evidence["target"] == "raspberry-pi-4"  # a bundle, deployed over SSH
    # ring after ring: no device of a ring was staged before every device of the ring before had promoted
    for first, then in (("canary", "early"), ("early", "all")):
        promoted = max(e["time"] for n in RING_OF[first] for e in events(ring_fleet.stores[n], sha)
                       if e["event"] == "promote")
        staged = min(e["time"] for n in RING_OF[then] for e in events(ring_fleet.stores[n], sha)
                     if e["event"] == "stage")
        assert promoted <= staged
    ring_fleet.check_apps()


@pytest.mark.slow
def test_a_broken_candidate_stops_at_the_first_ring(ring_fleet, broken, cli, tmp_path):
    cand = ring_fleet.signed_copy(broken, tmp_path / "models", "broken")
    sha = sha256_file(cand)
    before = {n: ModelStore(s).index()["active"]["sha256"] for n, s in ring_fleet.stores.items()}
    journal = tmp_path / "rollout.json"
    code, out, err = cli("fleet", "deploy", cand, "--inventory", ring_fleet.inventory, *FLAGS, "--journal", journal,
                         "--json")
    assert code == 1, err
    doc = json.loads(out)
    assert doc["state"] == "halted" and [r["state"] for r in doc["rings"]] == ["halted", "pending", "pending"]
    assert doc["untouched"] == ["pi-2", "pi-3", "pi-4"]
    canary = {d["name"]: d for d in doc["rings"][0]["devices"]}
    assert any(d["step"] == "rejected" and "disagreement" in d["reason"] for d in canary.values())
    for name, d in canary.items():
        assert d["step"] in ("rejected", "cancelled") and d["active_after"] == before[name] == d["previous"]
        idx = ModelStore(ring_fleet.stores[name]).index()
        assert idx["active"]["sha256"] == before[name] and idx["candidate"] is None and sha in idx["bad"]
        assert not (ring_fleet.stores[name] / "incoming").exists()
    for name in doc["untouched"]:  # the later rings never saw it
        no_trace(ring_fleet.stores[name], sha)
        assert ModelStore(ring_fleet.stores[name]).index()["active"]["sha256"] == before[name]
    # the apps of the halted ring go on answering with their previous version
    calls = {n: ring_fleet.app_report(n)["calls"] for n in canary}
    time.sleep(0.5)
    for name in canary:
        now = ring_fleet.app_report(name)
        assert now["sha256"] == before[name] and now["calls"] > calls[name]
    # the same command again: the journal says halted; no device is contacted, nothing changes
    counts = {n: len(events(s)) for n, s in ring_fleet.stores.items()}
    code, out, err = cli("fleet", "deploy", cand, "--inventory", ring_fleet.inventory, *FLAGS, "--journal", journal)
    assert code == 1 and "halted earlier" in err
    assert {n: len(events(s)) for n, s in ring_fleet.stores.items()} == counts
    ring_fleet.check_apps()


@pytest.mark.slow
def test_an_interrupted_rollout_resumes_from_its_journal(ring_fleet, digits_models, cli, tmp_path):
    cand = ring_fleet.signed_copy(digits_models("dynamic"), tmp_path / "models", "v3")
    sha = sha256_file(cand)
    journal = tmp_path / "rollout.json"
    args = ["fleet", "deploy", str(cand), "--inventory", str(ring_fleet.inventory), *FLAGS, "--journal", str(journal)]
    args[args.index("--calls") + 1] = "150"  # rings long enough that the kill lands inside the rollout
    with open(tmp_path / "first.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE, *args],
                                stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(WORKTREE)))
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.is_file() and json.loads(journal.read_text())["ring"]["canary"]["state"] == "promoted":
                break
            time.sleep(0.02)
    finally:
        proc.kill()  # SIGKILL: no handler runs, the journal is as the last step left it
        proc.wait()
    killed = json.loads(journal.read_text())
    assert killed["ring"]["canary"]["state"] == "promoted", (tmp_path / "first.log").read_text()[-2000:]
    assert killed["state"] == "running"  # the kill came before the end
    code, out, err = cli(*args[:-2], "--journal", journal, "--calls", "150")
    assert code == 0, err
    assert "ring canary: promoted earlier on 2 devices (from the journal)" in err
    for name, store in ring_fleet.stores.items():
        assert ModelStore(store).index()["active"]["sha256"] == sha, name
        staged = [e for e in events(store, sha) if e["event"] == "stage"]
        assert len(staged) == 1, (name, staged)  # finished steps were not redone: one deploy per device
    assert json.loads(journal.read_text())["state"] == "done"
    ring_fleet.check_apps()


@pytest.mark.slow
def test_a_ring_that_does_not_decide_in_time_is_put_back_on_every_device(tmp_path, ssh_server, digits,
                                                                          digits_models, keys, cli):
    """pi-a promotes the candidate, pi-b (its app is down) never decides: at the ring's timeout pi-a is rolled
    back and pi-b's staged candidate dropped, both over SSH; --force stages it again later."""
    key, pub = keys["ours"]
    v1 = local_fleet.signed_copy(digits_models("fp32"), tmp_path / "models", "v1", key)
    fl = local_fleet.start(tmp_path, ssh_server, v1, key, pub, digits.x_test,
                           {"pi-a": "canary", "pi-b": "canary", "pi-c": "later"})
    try:
        fl.apps["pi-b"].terminate()
        fl.apps["pi-b"].wait(10)
        cand = fl.signed_copy(digits_models("int8"), tmp_path / "models", "v2")
        sha = sha256_file(cand)
        flags = ["--inventory", fl.inventory, "--rings", "canary,later", "--calls", "60", "--poll", "0.2",
                 "--timeout", "8", "--json"]
        code, out, err = cli("fleet", "deploy", cand, *flags, "--journal", tmp_path / "j1.json")
        assert code == 1, err
        doc = json.loads(out)
        ring = {d["name"]: d for d in doc["rings"][0]["devices"]}
        assert ring["pi-a"]["step"] == "rolled-back" and ring["pi-b"]["step"] == "timeout"
        assert "no decision within 8 s" in ring["pi-b"]["reason"] and "pi-b timeout" in doc["reason"]
        v1_sha = sha256_file(v1)
        for name in ("pi-a", "pi-b"):
            assert ring[name]["active_after"] == v1_sha
            idx = ModelStore(fl.stores[name]).index()
            assert idx["active"]["sha256"] == v1_sha and idx["candidate"] is None
        assert [e["event"] for e in events(fl.stores["pi-a"], sha)] == ["stage", "promote", "rollback"]
        assert [e["event"] for e in events(fl.stores["pi-b"], sha)] == ["stage", "reject"]
        no_trace(fl.stores["pi-c"], sha)
        deadline = time.monotonic() + 30  # pi-a's app follows its store back to v1
        while fl.served("pi-a") != v1_sha and time.monotonic() < deadline:
            time.sleep(0.1)
        assert fl.served("pi-a") == v1_sha
        # a new rollout meets the stores' bad marks: refused without --force, staged again with it
        code, out, err = cli("fleet", "deploy", cand, *flags, "--journal", tmp_path / "j2.json")
        assert code == 1 and "rejected (found in the store)" in err
        # pi-b still has no app: this ring times out again, but pi-a took the candidate in over its bad mark
        code, out, err = cli("fleet", "deploy", cand, *flags, "--journal", tmp_path / "j3.json", "--force")
        assert code == 1 and "pi-a: staged" in err
        assert "forced over" not in err and any(e.get("override") for e in events(fl.stores["pi-a"], sha))
    finally:
        fl.stop()


def test_ctrl_c_keeps_the_journal_and_the_same_command_goes_on_from_it(tmp_path, digits_models, cli):
    """A local device whose app is not running: the canary waits; Ctrl-C ends the rollout at once (exit 130),
    the journal holds the staged device; the same command resumes watching it (no second deploy)."""
    from edgekit.store import ops

    store = tmp_path / "store"
    ops.deploy(digits_models("fp32"), store)
    inv = tmp_path / "fleet.toml"
    inv.write_text(f'[[device]]\nname = "gw"\nhost = "local"\nstore = "{store}"\nring = "canary"\n'
                   f'[[device]]\nname = "lab"\nhost = "local"\nstore = "{tmp_path / "lab"}"\nring = "lab"\n')
    model = digits_models("int8")
    args = ["fleet", "deploy", str(model), "--inventory", str(inv), "--rings", "canary", "--poll", "0.2"]
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(WORKTREE)))
    journal = tmp_path / f"fleet.rollout-{sha256_file(model)[:12]}.json"  # the default: next to the inventory
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (journal.is_file() and "staged" in journal.read_text()):
        time.sleep(0.05)
    proc.send_signal(2)  # SIGINT, as Ctrl-C sends it
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err and "not in these rings, left alone: lab" in err
    assert json.loads(journal.read_text())["device"]["gw"]["step"] == "staged"
    code, out, err = cli(*args, "--timeout", "1")  # still no app: this time the ring times out and is put back
    assert code == 1 and "gw timeout" in out
    assert [e["event"] for e in events(store, sha256_file(model))] == ["stage", "reject"]  # one deploy only
    assert not (tmp_path / "lab").exists()


def test_bad_input_is_one_line_and_exit_2(tmp_path, digits_models, cli):
    store = tmp_path / "store"
    inv = tmp_path / "fleet.toml"
    inv.write_text(f'[[device]]\nname = "gw"\nhost = "local"\nstore = "{store}"\nring = "canary"\n')
    model = digits_models("fp32")
    code, _, err = cli("fleet", "deploy", model, "--inventory", inv, "--rings", "canary,nope")
    assert code == 2 and "ring 'nope' has no devices" in err and "rings there: canary" in err
    bare = tmp_path / "bare.tflite"
    bare.write_bytes(model.read_bytes())
    code, _, err = cli("fleet", "deploy", bare, "--inventory", inv, "--rings", "canary")
    assert code == 2 and "no manifest next to it" in err
    code, _, err = cli("fleet", "deploy", model, "--inventory", inv, "--rings", "canary", "--calls", "0")
    assert code == 2 and "--calls must be at least 1" in err
    # a journal of another candidate is refused, not resumed
    other = tmp_path / "j.json"
    other.write_text(json.dumps({"schema": "edgekit.fleet-rollout/1", "candidate": {"sha256": "ab" * 32}}))
    code, _, err = cli("fleet", "deploy", model, "--inventory", inv, "--rings", "canary", "--journal", other)
    assert code == 2 and "not of" in err and "another --journal" in err
    assert len(err.strip().splitlines()) == 1
    assert not store.exists()  # nothing was deployed on the way
    code, out, _ = cli("fleet", "deploy", "--help")
    assert code == 0 and "Example: edgekit fleet deploy" in " ".join(out.split())
