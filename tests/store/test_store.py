"""The store itself: deploy, verify, activate, stage, promote, reject, roll back, status, and its CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from edgekit.errors import StoreError, TamperedModelError
from edgekit.fsutil import sha256_file
from edgekit.manifest import manifest_path_for
from edgekit.store import ModelStore


def test_deploy_activates_and_keeps_the_previous_version(tmp_path, good, good_int8):
    st = ModelStore(tmp_path / "s", create=True)
    first = st.deploy(good)
    assert first["action"] == "activated" and first["sha256"] == sha256_file(good)
    second = st.deploy(good_int8)
    assert second == {"sha256": sha256_file(good_int8), "action": "activated", "previous": first["sha256"]}
    idx = st.index()
    assert idx["active"]["sha256"] == second["sha256"] and idx["good"] == [first["sha256"]]
    assert (st.layout.object(first["sha256"]) / "model.tflite").read_bytes() == good.read_bytes()
    assert st.open().sha256 == second["sha256"]
    assert st.deploy(good_int8)["action"] == "unchanged"
    assert [e["event"] for e in st.history()] == ["activate", "activate"]


def test_a_model_that_does_not_match_its_manifest_is_refused(tmp_path, good, copy_model):
    m = copy_model(good)
    data = bytearray(m.read_bytes())
    data[-1] ^= 1
    m.write_bytes(bytes(data))
    st = ModelStore(tmp_path / "s", create=True)
    with pytest.raises(TamperedModelError, match="does not match its manifest"):
        st.deploy(m)
    assert list(st.layout.objects.iterdir()) == []


def test_open_skips_a_damaged_active_version_for_the_previous_good_one(tmp_path, good, good_int8):
    st = ModelStore(tmp_path / "s", create=True)
    a, b = st.deploy(good)["sha256"], st.deploy(good_int8)["sha256"]
    obj = st.layout.object(b) / "model.tflite"
    obj.write_bytes(obj.read_bytes()[:-10])  # damaged on disk
    version, problems = st.resolve()
    assert version.sha256 == a and b[:12] in problems[0] and "sha256" in problems[0]
    assert st.open().sha256 == a
    assert st.incidents()[-1]["kind"] == "store" and st.incidents()[-1]["action"] == "serve-previous"
    status = st.status()
    assert status["active"]["verified"] is False and status["serving"] == a


def test_stage_promote_reject_and_rollback_are_recorded(tmp_path, good, good_int8, good_dynamic):
    st = ModelStore(tmp_path / "s", create=True)
    a = st.deploy(good)["sha256"]
    staged = st.deploy(good_int8, canary={"calls": 50})
    assert staged["action"] == "staged" and st.index()["active"]["sha256"] == a
    b = staged["sha256"]
    assert st.index()["candidate"]["canary"]["calls"] == 50
    assert st.promote(b, {"compared": 50, "disagreed": 0}) is True
    assert st.index()["active"]["sha256"] == b and st.index()["candidate"] is None
    assert st.promote(b) is False  # no longer the candidate
    c = st.deploy(good_dynamic, canary={"calls": 50})["sha256"]
    assert st.reject(c, {"compared": 12, "disagreed": 9}, reason="canary failed: too different")
    assert st.index()["active"]["sha256"] == b and c in st.index()["bad"]
    back = st.rollback("field complaints")
    assert back == {"sha256": a, "previous": b}
    assert st.index()["active"]["via"] == "rollback" and b in st.index()["bad"]
    events = [e["event"] for e in st.history()]
    assert events == ["activate", "stage", "promote", "stage", "reject", "rollback"]
    assert st.history()[4]["figures"] == {"compared": 12, "disagreed": 9}
    with pytest.raises(StoreError, match="no previous good version"):
        st.rollback()
    assert st.index()["active"]["sha256"] == a


def test_old_versions_are_pruned_but_good_ones_kept(tmp_path, good, good_int8, good_dynamic):
    st = ModelStore(tmp_path / "s", create=True, keep=1)
    shas = [st.deploy(m)["sha256"] for m in (good, good_int8, good_dynamic)]
    assert sorted(p.name for p in st.layout.objects.iterdir()) == sorted(shas[1:])


def test_a_lost_event_is_recovered_by_the_next_writer(tmp_path, good, good_int8):
    st = ModelStore(tmp_path / "s", create=True)
    st.deploy(good)
    st.deploy(good_int8)
    lines = st.layout.events.read_text().splitlines()
    st.layout.events.write_text(lines[0] + "\n")  # as if the power went between index rename and event append
    st.rollback()
    events = st.history()
    assert [e["event"] for e in events] == ["activate", "activate", "rollback"] and events[1]["recovered"]


def test_not_a_store_is_a_clear_error(tmp_path, cli):
    code, _, err = cli("status", "--store", tmp_path / "nothing")
    assert code == 2 and "not a model store" in err and "edgekit deploy" in err


def test_cli_deploy_status_rollback(tmp_path, good, good_int8, cli):
    store = tmp_path / "s"
    code, out, _ = cli("deploy", good, "--store", store, "--json")
    assert code == 0 and json.loads(out)["action"] == "activated"
    code, out, _ = cli("deploy", good_int8, "--store", store, "--canary-calls", "30", "--max-disagreement", "0.02",
                       "--json")
    assert code == 0 and json.loads(out)["action"] == "staged"
    code, out, _ = cli("status", "--store", store, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["active"]["sha256"] == sha256_file(good) and doc["active"]["verified"]
    assert doc["candidate"]["sha256"] == sha256_file(good_int8)
    assert doc["candidate"]["canary"]["budgets"]["max_disagreement"] == 0.02
    assert [e["event"] for e in doc["history"]] == ["activate", "stage"]
    code, out, _ = cli("status", "--store", store)
    assert code == 0 and "candidate" in out and sha256_file(good)[:12] in out
    code, _, err = cli("rollback", "--store", store)
    assert code == 2 and "no previous good version" in err
    cli("deploy", good_int8, "--store", store)
    code, out, _ = cli("rollback", "--store", store, "--json")
    assert code == 0 and json.loads(out)["sha256"] == sha256_file(good)


def test_cli_deploy_bad_input(tmp_path, good, cli, copy_model):
    code, _, err = cli("deploy", tmp_path / "missing.tflite", "--store", tmp_path / "s")
    assert code == 2 and "missing.tflite" in err and "not found" in err
    code, _, err = cli("deploy", good, "--store", tmp_path / "s", "--canary-calls", "0")
    assert code == 2 and "--canary-calls" in err
    m = copy_model(good)
    manifest_path_for(m).unlink()
    code, _, err = cli("deploy", m, "--store", tmp_path / "s")
    assert code == 2 and "no manifest" in err


def test_budgets_come_from_flags_then_profile_then_defaults(good, tmp_path):
    from edgekit.store import Budgets
    from edgekit.store.ops import canary_budgets

    assert canary_budgets(good, None, None, {}) == Budgets().to_dict()
    prof = tmp_path / "dev.toml"
    prof.write_text('name = "dev"\narch = "aarch64"\ncores = 4\nmemory_mb = 1024\nmax_latency_ms = 7.5\n')
    b = canary_budgets(good, None, str(prof), {"max_disagreement": 0.01})
    assert b["max_latency_ms"] == 7.5 and b["max_disagreement"] == 0.01


def test_status_json_carries_incidents(tmp_path, good, good_int8):
    st = ModelStore(tmp_path / "s", create=True)
    st.deploy(good)
    c = st.deploy(good_int8, canary={"calls": 5})["sha256"]
    st.write_canary_figures(c, {"compared": 3, "disagreed": 0})
    assert st.status()["candidate"]["figures"] == {"compared": 3, "disagreed": 0}
    st.reject(c, {"compared": 5}, "canary failed: test")
    s = st.status()
    assert s["candidate"] is None and s["incidents"][-1]["kind"] == "canary"
    assert not os.path.exists(st.layout.canary_figures(c))  # pruned with the version


@pytest.mark.parametrize("command", ["deploy", "rollback", "status", "sign"])
def test_help_has_a_runnable_example(command, cli):
    code, out, _ = cli(command, "--help")
    assert code == 0 and f"Example: edgekit {command}" in " ".join(out.split())


def test_device_commands_reject_a_candidate_and_roll_back_only_the_expected_version(tmp_path, good, good_int8):
    """``python -m edgekit.store reject`` / ``rollback --expect`` (what edgekit fleet deploy runs on a device):
    each acts only while the store is as the caller saw it."""
    import subprocess
    import sys

    def device(*args):
        res = subprocess.run([sys.executable, "-m", "edgekit.store", *map(str, args), "--json"], capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    st = ModelStore(tmp_path / "s", create=True)
    a = st.deploy(good)["sha256"]
    b = st.deploy(good_int8, canary={"calls": 10})["sha256"]
    assert device("reject", a, "--store", st.root, "--reason", "not the candidate")["action"] == "unchanged"
    assert device("reject", b, "--store", st.root, "--reason", "rollout halted")["action"] == "rejected"
    assert st.index()["candidate"] is None and b in st.index()["bad"] and st.history()[-1]["reason"] == "rollout halted"
    st.deploy(good_int8, force=True)  # active now
    assert device("rollback", "--store", st.root, "--expect", a)["action"] == "unchanged"
    assert st.index()["active"]["sha256"] == b
    doc = device("rollback", "--store", st.root, "--expect", b, "--reason", "rollout halted")
    assert doc["action"] == "rolled-back" and doc["sha256"] == a and st.index()["active"]["sha256"] == a
