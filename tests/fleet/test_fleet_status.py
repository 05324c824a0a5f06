"""fleet status against real stores behind the real sshd: one drifted device, one unreachable, the rest healthy."""

from __future__ import annotations

import json
import re


def test_status_names_the_drifted_and_the_unreachable_device(fleet, cli, tmp_path):
    report = tmp_path / "fleet.html"
    code, out, err = cli("fleet", "status", "--inventory", fleet.inventory, "--json", "--report", report,
                         "--timeout", "20")
    assert code == 1, err
    doc = json.loads(out)
    states = {d["name"]: d["state"] for d in doc["devices"]}
    assert doc["unreachable"] == ["pi-down"] and doc["unhealthy"] == ["pi-drift"]
    assert states == {"pi-a": "healthy", "pi-b": "healthy", "gateway": "healthy", "pi-drift": "unhealthy",
                      "pi-down": "unreachable"}, [d["warnings"] for d in doc["devices"]]
    by = {d["name"]: d for d in doc["devices"]}
    drift = by["pi-drift"]
    assert any(p.startswith("input image drifted") for p in drift["problems"]), drift["problems"]
    assert drift["health"]["psi_max"] > 0.25 and drift["health"]["ood_share"] > 0.25
    assert "ood_share" in drift["outliers"] and drift["outliers"]["ood_share"] > 3.5
    assert "cannot connect" in by["pi-down"]["error"]
    for name in ("pi-a", "pi-b", "gateway"):
        h = by[name]["health"]
        assert h["calls"] == 150 and h["psi_max"] < 0.1 and not by[name]["outliers"], (name, h)
    versions = doc["versions"]
    assert len(versions) == 1 and sorted(next(iter(versions.values()))) == ["gateway", "pi-a", "pi-b", "pi-drift"]
    assert doc["rings"]["early"]["unhealthy"] == ["pi-drift"] and doc["rings"]["all"]["unreachable"] == ["pi-down"]
    assert doc["tags"]["lab"]["healthy"] == 2
    page = report.read_text()
    assert page.count("<svg") >= 3 and "pi-drift" in page and "polyline" in page


def test_status_text_and_a_healthy_fleet_exits_0(fleet, cli, tmp_path):
    code, out, err = cli("fleet", "status", "--inventory", fleet.inventory)
    assert code == 1
    assert re.search(r"unhealthy: pi-drift: input image drifted", out), out
    assert re.search(r"pi-down .*UNREACHABLE .*cannot connect", out), out
    assert "fleet NOT ok: 1 unhealthy (pi-drift), 1 unreachable (pi-down)" in out
    text = fleet.inventory.read_text()
    healthy = tmp_path / "healthy.toml"  # the same file without the two bad devices
    healthy.write_text("\n".join(b for b in text.split("\n\n") if "pi-drift" not in b and "pi-down" not in b))
    code, out, err = cli("fleet", "status", "--inventory", healthy)
    assert code == 0, out + err
    assert out.strip().endswith("fleet ok")


def test_rollbacks_by_hand_and_by_the_served_model(tmp_path, digits_models, cli):
    """Two local stores with two versions each: one rolled back by hand (shown, no warning), one rolled back
    the way serve() does it when its health rules break (a warning naming the reason)."""
    from edgekit.store import ModelStore

    parts = []
    for name in ("by-hand", "by-itself"):
        st = ModelStore(tmp_path / name, create=True)
        st.deploy(digits_models("fp32"))
        st.deploy(digits_models("int8"))
        if name == "by-hand":
            st.rollback()
        else:  # what ServedModel._check_health records
            st.rollback("automatic: OOD storm: 80% of the last 100 samples flagged (over 50%)", automatic=True)
        parts.append(f'[[device]]\nname = "{name}"\nhost = "local"\nstore = "{st.root}"\n')
    inv = tmp_path / "fleet.toml"
    inv.write_text("\n".join(parts))
    code, out, _ = cli("fleet", "status", "--inventory", inv, "--json")
    assert code == 0
    by = {d["name"]: d for d in json.loads(out)["devices"]}
    assert by["by-hand"]["rollbacks"]["recent"] == 1 and by["by-hand"]["rollbacks"]["automatic"] == 0
    assert by["by-itself"]["rollbacks"]["automatic"] == 1 and by["by-itself"]["state"] == "warning"
    assert any("automatic rollback" in w and "OOD storm" in w for w in by["by-itself"]["warnings"])
    assert all("no health snapshot" in " ".join(d["warnings"]) for d in by.values())
