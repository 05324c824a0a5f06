"""Inventory files: defaults merged, rings in file order, and every mistake a one-line error naming file,
device and field (exit 2, before any device is contacted)."""

from __future__ import annotations

import pytest

from edgekit.errors import UsageError
from edgekit.fleet.inventory import load_inventory

GOOD = """
[defaults]
user = "pi"
port = 2222
store = "/var/lib/app/models"
tags = ["pi4"]

[[device]]
name = "a"
host = "10.0.0.1"
ring = "early"

[[device]]
name = "b"
host = "10.0.0.2"
ring = "canary"
port = 22
key = "~/.ssh/fleet"
ssh_options = ["StrictHostKeyChecking=no"]

[[device]]
name = "gw"
host = "local"
ring = "early"
user = ""
"""


def test_defaults_rings_and_ssh_options(tmp_path):
    p = tmp_path / "fleet.toml"
    p.write_text(GOOD)
    inv = load_inventory(p)
    a, b, gw = inv.devices
    assert (a.target, a.port, a.store, a.tags) == ("pi@10.0.0.1", 2222, "/var/lib/app/models", ("pi4",))
    assert inv.rings() == ["early", "canary"] and [d.name for d in inv.ring("early")] == ["a", "gw"]
    opts = b.ssh()
    assert opts.port == 22 and opts.key.endswith("/.ssh/fleet") and not opts.key.startswith("~")
    assert opts.command(b.target, "true")[-2:] == ["pi@10.0.0.2", "true"]
    assert "StrictHostKeyChecking=no" in opts.command(b.target, "true")
    assert gw.local and gw.target == "local" and not a.local


BAD = {
    "missing host": ('[[device]]\nname = "a"\n', "device 1 (a): missing 'host'"),
    "bad port": ('[[device]]\nname = "a"\nhost = "h"\nport = 70000\n', "device 1 (a): port must be an integer"),
    "port as text": ('[[device]]\nname = "a"\nhost = "h"\nport = "22"\n', "device 1 (a): port must be an integer"),
    "unknown key": ('[[device]]\nname = "a"\nhost = "h"\nadress = "x"\n', "device 1 (a): unknown key 'adress'"),
    "duplicate": ('[[device]]\nname = "a"\nhost = "h"\n[[device]]\nname = "a"\nhost = "g"\n',
                  "device 2 (a): duplicate name (also device 1)"),
    "tags not a list": ('[[device]]\nname = "a"\nhost = "h"\ntags = "lab"\n', "device 1 (a): tags must be a list"),
    "host as option": ('[[device]]\nname = "a"\nhost = "-oProxyCommand=x"\n', "device 1 (a): host '-oProxyCommand"),
    "no devices": ('[defaults]\nuser = "pi"\n', "no devices"),
    "unknown table": ('[devices]\nname = "a"\n', "unknown table 'devices'"),
    "not toml": ('[[device]\nname = "a"\n', "not valid TOML"),
    "default name": ('[defaults]\nname = "x"\n[[device]]\nhost = "h"\n', "'name' cannot have a default"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_inventory_is_one_line_exit_2(tmp_path, cli, case):
    text, expected = BAD[case]
    p = tmp_path / "fleet.toml"
    p.write_text(text)
    with pytest.raises(UsageError) as err:
        load_inventory(p)
    assert expected in str(err.value) and str(p) in str(err.value)
    for command in (("fleet", "status"), ("fleet", "incidents", "-o", tmp_path / "out")):
        code, out, stderr = cli(*command, "--inventory", p)
        assert code == 2 and out == "" and stderr.count("\n") == 1 and expected in stderr, stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_inventory(tmp_path, cli):
    code, _, err = cli("fleet", "status", "--inventory", tmp_path / "nope.toml")
    assert code == 2 and "inventory file not found" in err and err.count("\n") == 1
