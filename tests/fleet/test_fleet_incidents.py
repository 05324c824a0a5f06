"""fleet incidents: new records only, each once, and every record either pulled or counted as lost after rotation."""

from __future__ import annotations

import json

import pytest

from fleet_devices import device_python, feed, shifted, ssh_device_toml

from edgekit.runtime.policy import Policy


def _pull(cli, inventory, out, *extra):
    code, stdout, err = cli("fleet", "incidents", "--inventory", inventory, "-o", out, "--json", *extra)
    return code, json.loads(stdout), err


def test_pull_twice_pulls_nothing_twice_and_counts_match(fleet, cli, tmp_path, digits):
    out = tmp_path / "incidents"
    code, doc, err = _pull(cli, fleet.inventory, out)
    assert code == 1 and doc["failed"] == ["pi-down"], err  # unreachable: named, the others pulled
    by = {d["name"]: d for d in doc["devices"]}
    for name, counts in fleet.recorded.items():
        assert by[name]["pulled"] == sum(counts.values()), (name, by[name], counts)
        assert by[name]["lost"] == 0 and by[name]["device_dropped_total"] == 0
    assert by["pi-drift"]["pulled"] == 150 and by["pi-drift"]["by_kind"] == {"ood": 150}
    assert doc["groups_new"]["by_kind"] == {"ood": 150} and doc["groups_new"]["by_device"] == {"pi-drift": 150}
    assert list(doc["groups_new"]["by_version"].values()) == [150]
    archive = (out / "incidents.jsonl").read_text().splitlines()
    assert len(archive) == 150 and all(json.loads(line)["device"] == "pi-drift" for line in archive)

    code, doc, _ = _pull(cli, fleet.inventory, out)  # nothing new: nothing pulled again
    assert doc["pulled"] == 0 and len((out / "incidents.jsonl").read_text().splitlines()) == 150
    assert doc["groups_archive"]["records"] == 150

    more = feed(fleet.stores["pi-a"], shifted(digits.x_test[:20]), batches=1, pause_s=0)
    code, doc, _ = _pull(cli, fleet.inventory, out)
    assert {d["name"]: d["pulled"] for d in doc["devices"]} == {"pi-a": 20, "pi-b": 0, "gateway": 0,
                                                               "pi-drift": 0, "pi-down": 0}
    assert sum(more.values()) == 20
    assert len((out / "incidents.jsonl").read_text().splitlines()) == 170
    assert (out / "report.html").read_text().count("<table>") >= 5


def test_rotation_loses_nothing_it_does_not_count(ssh_server, cli, tmp_path, digits, digits_models):
    """A small rotated log (about 7 records a file, one backup) behind SSH: every record the device wrote
    is pulled once or counted as lost, never both, never twice."""
    from edgekit.store import ModelStore

    store = tmp_path / "store"
    ModelStore(store, create=True).deploy(digits_models("fp32"))
    inv = tmp_path / "fleet.toml"
    inv.write_text(ssh_device_toml("pi-small", ssh_server, device_python(tmp_path), store, "canary", []))
    policy = Policy(incident_log_max_bytes=4096, incident_log_backups=1)
    out = tmp_path / "pulled"
    xs = shifted(digits.x_test)
    written, pulled, lost = 0, 0, 0
    for n, expect_loss in ((5, False), (5, False), (40, True), (3, False)):
        written += sum(feed(store, xs[written:written + n], batches=1, pause_s=0, policy=policy).values())
        code, doc, err = _pull(cli, inv, out)
        assert code == 0, err
        dev = doc["devices"][0]
        pulled += dev["pulled"]
        lost += dev["lost"]
        assert (dev["lost"] > 0) == expect_loss, dev
        assert pulled + lost == written, (n, dev)
    assert written == 53 and lost > 0 and (store / "incidents.jsonl.1").exists()
    archive = [json.loads(line) for line in (out / "incidents.jsonl").read_text().splitlines()]
    assert len(archive) == pulled
    assert len({(r["time"], r["input"]["mean"]) for r in archive}) == pulled  # no record twice
    code, doc, _ = _pull(cli, inv, out)
    assert doc["pulled"] == 0 and doc["lost"] == 0


def test_one_local_log(cli, fleet):
    code, out, err = cli("incidents", fleet.stores["pi-drift"] / "incidents.jsonl", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["pulled"] == 150 and doc["groups_new"]["by_kind"] == {"ood": 150}
    assert doc["groups_new"]["by_input"] == {"(input)": 150}
    code, out, err = cli("incidents", fleet.stores["pi-drift"], "--since", "2000-01-01")  # a store folder
    assert code == 0 and "150 record(s)" in out and "by kind     ood 150" in out, out
    code, out, err = cli("incidents", fleet.stores["pi-drift"], "--since", "2999-01-01", "--json")
    assert json.loads(out)["pulled"] == 0


@pytest.mark.parametrize("since", ["yesterday", "12x", "2026-13"])
def test_a_bad_since_is_one_line(cli, fleet, since):
    code, out, err = cli("incidents", fleet.stores["pi-a"], "--since", since)
    assert code == 2 and err.count("\n") == 1 and "--since" in err
