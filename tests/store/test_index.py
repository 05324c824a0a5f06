"""A damaged or lost index.json: serving goes on, writers refuse in one line, ``status --repair`` rebuilds it,
nothing stored is pruned; a version marked bad gets back in only with ``--force``, recorded."""

from __future__ import annotations

import json
import os

import pytest

from edgekit.errors import StoreError
from edgekit.fsutil import sha256_file

from edgekit.store import ModelStore, serve


def _field(path: str, value):
    """A damage: the index with ``path`` (dotted) set to ``value``."""

    def damage(idx):
        *outer, last = path.split(".")
        node = idx
        for key in outer:
            node[key] = node.get(key) or {"sha256": "a" * 64, "staged": "t", "canary": None, "generation": 1}
            node = node[key]
        node[last] = value
        return json.dumps(idx).encode()

    return damage


# Each kind of damage, as index -> bytes. The typed ones each raised a TypeError / KeyError / ValueError
# somewhere (status, deploy, rollback or serving) before the index was checked field by field.
DAMAGES = {
    "truncated": lambda idx: json.dumps(idx).encode()[:40],
    "empty": lambda idx: b"",
    "not-json": lambda idx: b"\x00\xffnot json at all",
    "nested-too-deep": lambda idx: b"[" * 100_000,
    "a-list": lambda idx: b"[]",
    "schema": _field("schema", 2),
    "generation-text": _field("generation", "7"),
    "generation-negative": _field("generation", -1),
    "active-text": _field("active", "abc"),
    "active-no-sha": _field("active", {"via": "deploy"}),
    "active-sha-number": _field("active.sha256", 5),
    "active-sha-path": _field("active.sha256", "../../../etc"),
    "active-via-null": _field("active.via", None),
    "good-number": _field("good", 5),
    "good-of-numbers": _field("good", [5]),
    "candidate-text": _field("candidate", "x"),
    "candidate-calls-text": _field("candidate.canary", {"calls": "many", "minutes": None, "budgets": None}),
    "candidate-budget-text": _field("candidate.canary", {"calls": 5, "minutes": None,
                                                         "budgets": {"max_disagreement": "x"}}),
    "bad-object": _field("bad", {"a": 1}),
    "last-event-text": _field("last_event", "x"),
    "last-event-generation-text": _field("last_event.generation", "1"),
}


def _store(tmp_path, *models, **kw) -> ModelStore:
    st = ModelStore(tmp_path / "s", create=True, **kw)
    for m in models:
        st.deploy(m)
    return st


def _meaning(idx) -> dict:
    """What an index says, without the times its records were written at."""
    return {"active": {k: idx["active"][k] for k in ("sha256", "via", "reason")} if idx["active"] else None,
            "candidate": {k: idx["candidate"][k] for k in ("sha256", "canary")} if idx["candidate"] else None,
            "good": idx["good"], "bad": idx["bad"]}


def test_a_served_model_keeps_answering_while_index_json_is_damaged(tmp_path, good, good_int8, digits):
    st = _store(tmp_path, good, good_int8)
    intact = st.layout.index.read_bytes()
    x = digits.x_test[:1]
    with serve(st.root) as served:
        want = served.predict(x).label
        for n, (name, damage) in enumerate(DAMAGES.items(), 1):
            st.layout.index.write_bytes(damage(json.loads(intact)))
            os.utime(st.layout.index, ns=(n * 10**9, n * 10**9))  # a stamp of its own, however fast the writes
            answers = [served.predict(x) for _ in range(5)]
            assert all(p.label == want for p in answers) and served.sha256 == sha256_file(good_int8), name
            last = st.incidents()[-1]
            assert last["action"] == "kept-serving" and "--repair" in last["reason"], name
        # once per damage, not once per call
        assert sum(i["action"] == "kept-serving" for i in st.incidents()) == len(DAMAGES)
        assert st.repair()["action"] == "rebuilt"
        st.deploy(good)  # the repaired store is followed again
        assert served.predict(x).label == want and served.sha256 == sha256_file(good)


def test_a_new_server_on_a_damaged_index_says_how_to_repair(tmp_path, good):
    st = _store(tmp_path, good)
    st.layout.index.write_bytes(b"{")
    with pytest.raises(StoreError, match="index.json: not valid JSON.*--repair"):
        serve(st.root)


@pytest.mark.parametrize("name", list(DAMAGES))
def test_each_damaged_index_is_a_one_line_error_and_exit_2(tmp_path, good, good_int8, cli, name):
    st = _store(tmp_path, good, good_int8)
    st.layout.index.write_bytes(DAMAGES[name](st.index()))
    for args in (["status"], ["deploy", good], ["rollback"]):
        code, out, err = cli(*args, "--store", st.root)
        assert code == 2 and out == "", (args, err)
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert f"edgekit status --store {st.root} --repair" in err, (args, err)
    assert sorted(p.name for p in st.layout.objects.iterdir()) == sorted([sha256_file(good), sha256_file(good_int8)])


def test_repair_rebuilds_an_index_equal_in_meaning_and_the_store_works_after(tmp_path, good, good_int8,
                                                                             good_dynamic, cli):
    st = _store(tmp_path, good, good_int8)
    a, b, c = sha256_file(good), sha256_file(good_int8), sha256_file(good_dynamic)
    st.deploy(good_dynamic, canary={"calls": 5})
    st.reject(c, {"compared": 5, "disagreed": 4}, "canary failed: test")
    st.deploy(good_dynamic, canary={"calls": 7, "budgets": {"max_disagreement": 0.3}}, force=True)
    lost = st.index()
    assert lost["candidate"]["sha256"] == c and lost["good"] == [a] and lost["active"]["sha256"] == b
    damaged = st.layout.index.read_bytes()[:-30]
    st.layout.index.write_bytes(damaged)
    code, out, err = cli("status", "--store", st.root, "--repair", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["repair"]["action"] == "rebuilt" and "not valid JSON" in doc["repair"]["problem"]
    rebuilt = st.index()
    assert _meaning(rebuilt) == _meaning(lost)
    assert rebuilt["generation"] == lost["generation"] + 1  # the history's count goes on
    assert [e["event"] for e in st.history()] == ["activate", "activate", "stage", "reject", "stage", "repair"]
    assert open(doc["repair"]["damaged_copy"], "rb").read() == damaged  # kept for a post-mortem
    code, out, _ = cli("status", "--store", st.root, "--repair")
    assert code == 0 and "nothing to repair" in out
    # the store works after: the candidate is promoted, then rolled back
    assert st.promote(c, {"compared": 7, "disagreed": 0})
    assert st.rollback("test")["sha256"] == b and st.index()["bad"][0] == c


def test_repair_after_a_rollback_and_a_deleted_index(tmp_path, good, good_int8):
    st = _store(tmp_path, good, good_int8)
    st.rollback("field complaints")
    lost = st.index()
    st.layout.index.unlink()
    assert st.repair()["problem"] == "index.json is missing"
    assert _meaning(st.index()) == _meaning(lost) and st.index()["active"]["via"] == "rollback"
    with pytest.raises(StoreError, match="rolled back"):  # the bad mark came back with the history
        st.deploy(good_int8)


def test_repair_without_history_names_the_newest_stored_version(tmp_path, good, good_int8):
    st = _store(tmp_path, good, good_int8)
    st.layout.index.write_text("not json")
    st.layout.events.unlink()
    fixed = st.repair()
    assert fixed["active"] in (sha256_file(good), sha256_file(good_int8)) and len(fixed["good"]) == 1
    assert st.index()["active"]["via"] == "repair" and st.open().sha256 == fixed["active"]


def test_a_deploy_with_no_index_never_deletes_stored_versions(tmp_path, good, good_int8, good_dynamic):
    st = _store(tmp_path, good, good_int8, good_dynamic)
    assert len(list(st.layout.objects.iterdir())) == 3
    st.layout.index.unlink()
    assert st.deploy(good)["action"] == "activated"
    assert sorted(p.name for p in st.layout.objects.iterdir()) == sorted(
        sha256_file(m) for m in (good, good_int8, good_dynamic))
    # the write started from the history's index: the lost one's versions are named, and kept
    assert st.index()["good"] == [sha256_file(good_dynamic), sha256_file(good_int8)]
    assert st.repair() == {"store": str(st.root), "action": "unchanged", "problem": None, "unnamed": []}


@pytest.mark.parametrize("how", ["rejected", "rolled-back"])
def test_a_bad_version_is_refused_without_force_and_the_override_is_recorded(tmp_path, good, good_int8, cli, how):
    st = _store(tmp_path, good)
    bad = sha256_file(good_int8)
    if how == "rejected":
        st.deploy(good_int8, canary={"calls": 5})
        st.reject(bad, {"compared": 5, "disagreed": 5}, "canary failed: disagrees")
        said = "rejected by its canary"
    else:
        st.deploy(good_int8)
        st.rollback("complaints from the field")
        said = "rolled back"
    before = st.index()
    for extra in ([], ["--canary-calls", "5"]):
        code, out, err = cli("deploy", good_int8, "--store", st.root, *extra)
        assert code == 2 and said in err and "--force" in err and err.count("\n") == 1, err
        assert st.index() == before and not st.layout.object(bad).exists()
    code, out, err = cli("deploy", good_int8, "--store", st.root, "--force", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["action"] == "activated" and said in doc["override"]
    last = st.history()[-1]
    assert last["event"] == "activate" and last["sha256"] == bad and said in last["override"]
    assert bad not in st.index()["bad"]
    code, out, _ = cli("status", "--store", st.root)
    assert code == 0 and "forced over: " + said in out


def test_a_copy_no_event_mentions_is_still_removed_by_the_next_write(tmp_path, good, good_int8, good_dynamic):
    st = _store(tmp_path, good)
    st.add(good_int8)  # copied in, never named: what a write cut before its index rename leaves
    st.deploy(good_dynamic)
    assert sorted(p.name for p in st.layout.objects.iterdir()) == sorted([sha256_file(good),
                                                                         sha256_file(good_dynamic)])
