"""An emulated Raspberry Pi (scripts/pi-sim, aarch64 trixie) as a fleet device beside a local store: its served
model's health snapshot and incidents travel back over SSH like any device's."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.pisim("aarch64"), pytest.mark.slow]

STORE = "/root/fleet-store"

# On the device: serve the store, 60 clean digits and 5 inputs with NaN (input incidents, refused).
SERVE = """
import json, sys
import numpy as np
from edgekit.store import serve
x = np.load(sys.argv[1])
bad = 0
with serve(sys.argv[2], health_every_s=0.05) as m:
    for row in x[:60]:
        m.predict(row[None])
    for row in x[:5]:
        try:
            m.predict(np.full_like(row[None], np.nan))
        except Exception:
            bad += 1
    calls = m.health()["calls"]
print(json.dumps({"calls": calls, "refused": bad}))
"""


def test_an_emulated_pi_in_the_fleet(pi_device, digits, digits_models, tmp_path, capsys):
    from edgekit.cli import main
    from edgekit.store import ModelStore, serve

    def cli(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    pi = pi_device("aarch64")
    model = digits_models("int8")
    pi.run(f"rm -rf {STORE}")
    code, _, err = cli("deploy", model, "--store", STORE, *pi.profile_options, "--json")
    assert code == 0, err
    np.save(tmp_path / "x.npy", digits.x_test[:60])
    remote_x = pi.put(tmp_path / "x.npy", "/root/fleet-x.npy")
    served = pi.python_json(SERVE, remote_x, STORE, timeout=900)
    assert served["refused"] == 5

    local = tmp_path / "gateway-store"
    ModelStore(local, create=True).deploy(model)
    with serve(local, health_every_s=0.05) as m:
        for row in digits.x_test[:60]:
            m.predict(row[None])
    opt = dict(zip(pi.profile_options[::2], pi.profile_options[1::2]))
    user, host = opt["--host"].split("@")
    inv = tmp_path / "fleet.toml"
    inv.write_text(f'[[device]]\nname = "pi"\nhost = "{host}"\nuser = "{user}"\nport = {opt["--ssh-port"]}\n'
                   f'key = "{opt["--ssh-key"]}"\npython = "{opt["--remote-python"]}"\nstore = "{STORE}"\n'
                   f'ring = "canary"\nssh_options = ["{opt["--ssh-option"]}", "StrictHostKeyChecking=no"]\n\n'
                   f'[[device]]\nname = "gateway"\nhost = "local"\nstore = "{local}"\nring = "all"\n')

    code, out, err = cli("fleet", "status", "--inventory", inv, "--json", "--timeout", "300")
    doc = json.loads(out)
    assert code == 0, (err, [d["problems"] for d in doc["devices"]])
    pi_row = doc["devices"][0]
    assert pi_row["state"] == "healthy" and pi_row["health"]["calls"] == served["calls"] >= 60
    assert pi_row["incidents"]["by_kind"] == {"input": 5}
    assert doc["versions"] == {ModelStore(local).index()["active"]["sha256"][:12]: ["pi", "gateway"]}

    out_dir = tmp_path / "incidents"
    for expected in (5, 0):
        code, out, err = cli("fleet", "incidents", "--inventory", inv, "-o", out_dir, "--json", "--timeout", "300")
        assert code == 0, err
        rows = {d["name"]: d for d in json.loads(out)["devices"]}
        assert rows["pi"]["pulled"] == expected and rows["gateway"]["pulled"] == 0
