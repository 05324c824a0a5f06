"""Fixtures for the fleet tests: real digits stores served by edgekit.store.serve, reached through the real sshd
on 127.0.0.1 (tests/profile/sshd.py), plus one "local" device and one unreachable (a closed port).

The devices' python is this venv's with this checkout on its path (a wrapper script), as in tests/store.
"""

from __future__ import annotations

import pytest

from fleet_devices import Fleet, closed_port, device_python, feed, shifted, ssh_device_toml  # tests/fleet on sys.path


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, ssh_server, digits, digits_models) -> Fleet:
    """Five devices: three healthy (two over SSH, one local), one fed drifted digits (SSH), one unreachable."""
    from edgekit.store import ModelStore

    root = tmp_path_factory.mktemp("fleet")
    py = device_python(root)
    model = digits_models("fp32")
    names = ("pi-a", "pi-b", "gateway", "pi-drift")
    stores = {}
    fl = Fleet(root / "fleet.toml", stores)
    for name in names:
        stores[name] = root / f"store-{name}"
        ModelStore(stores[name], create=True).deploy(model)
    xs = digits.x_test[:150]
    for name in names:
        fl.recorded[name] = feed(stores[name], shifted(xs) if name == "pi-drift" else xs)
    parts = [ssh_device_toml("pi-a", ssh_server, py, stores["pi-a"], "canary", ["lab"]),
             ssh_device_toml("pi-b", ssh_server, py, stores["pi-b"], "early", ["lab"]),
             f'[[device]]\nname = "gateway"\nhost = "local"\nstore = "{stores["gateway"]}"\nring = "all"\n'
             'tags = ["site-2"]\n',
             ssh_device_toml("pi-drift", ssh_server, py, stores["pi-drift"], "early", ["site-2"]),
             ssh_device_toml("pi-down", ssh_server, py, root / "store-down", "all", ["site-2"], port=closed_port())]
    fl.inventory.write_text("\n".join(parts))
    return fl
