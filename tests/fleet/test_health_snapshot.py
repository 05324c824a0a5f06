"""Health that outlives the process: serve() writes snapshots into the store at a bounded rate and on close;
they are read back without the app (python -m edgekit.store health, status --json)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from fleet_devices import WORKTREE, shifted

from edgekit.store import ModelStore, serve
from edgekit.store.health import read_health


def test_snapshot_written_on_close_and_read_without_the_app(tmp_path, digits, digits_models, cli):
    store = tmp_path / "store"
    ModelStore(store, create=True).deploy(digits_models("fp32"))
    with serve(store, health_every_s=3600) as m:  # the rate bound: no snapshot during 300 calls
        for x in digits.x_test[:200]:
            m.predict(x[None])
        for x in shifted(digits.x_test[:100]):
            m.predict(x[None])
        assert m._health.writes == 0 and not list((store / "health").glob("*.json"))
        sha = m.sha256
    got = read_health(store, history=10)
    snap = got["latest"]
    assert len(got["snapshots"]) == 1 and len(got["history"]) == 1
    assert snap["sha256"] == sha and snap["calls"] == 300 and snap["via"] == "deploy" and snap["canary"] is None
    assert snap["incidents"]["ood"] == 100 and abs(snap["incident_rates"]["ood"] - 1 / 3) < 1e-6
    assert snap["inputs"]["image"]["drift"] in ("shifting", "drifted")
    assert snap["latency_ms"]["p50"] > 0 and snap["latency_ms"]["p95"] >= snap["latency_ms"]["p50"]
    assert abs(sum(snap["outputs"]["output_0"]["top1_share"].values()) - 1) < 0.02
    res = subprocess.run([sys.executable, "-m", "edgekit.store", "health", str(store), "--json"],
                         capture_output=True, text=True, env={"PYTHONPATH": str(WORKTREE), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["latest"]["calls"] == 300
    code, out, _ = cli("status", "--store", store, "--json")
    assert code == 0 and json.loads(out)["health"][0]["sha256"] == sha
    code, out, _ = cli("status", "--store", store)
    assert "300 calls, OOD" in out


def test_bounded_rate_and_fallback_rates(tmp_path, digits, digits_models):
    from edgekit.runtime import Policy

    store = tmp_path / "store"
    ModelStore(store, create=True).deploy(digits_models("fp32"))
    with serve(store, health_every_s=0.2, policy=Policy(on_ood="fallback"),
               fallback=digits_models("int8")) as m:
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 1.0:
            m.predict(shifted(digits.x_test[n % 100][None]) if n % 4 == 0 else digits.x_test[n % 100][None])
            n += 1
        time.sleep(0.05)
        writes = m._health.writes
    assert n > 500 and 3 <= writes <= 6, (n, writes)  # at most once per 0.2 s, whatever the call rate
    snap = read_health(store)["latest"]
    assert snap["fallbacks"] == {"ood": snap["incidents"]["ood"]} and snap["incidents"]["ood"] >= n // 4 * 0.9
    assert 0.2 < snap["fallback_rates"]["ood"] < 0.3
    lines = read_health(store, history=100)["history"]
    assert len(lines) == writes + 1 and lines[-1]["fallback_rate"] == snap["fallback_rates"]["ood"]


def test_a_full_disk_serves_on_and_snapshots_resume(tmp_path, digits, digits_models):
    """A 1 MB tmpfs filled up while serving (root ignores chmod, so a real mount): calls go on, no snapshot
    is torn, and snapshots come back once there is room."""
    store = tmp_path / "small"
    store.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(store)]).returncode != 0:
        raise AssertionError("mount -t tmpfs failed (these tests need root)")
    try:
        ModelStore(store, create=True).deploy(digits_models("int8"))
        with serve(store, health_every_s=0.05) as m:
            m.predict(digits.x_test[:1])
            time.sleep(0.1)
            m.predict(digits.x_test[:1])
            time.sleep(0.1)
            assert read_health(store)["latest"]["calls"] >= 1
            with open(store / "ballast", "wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                        fh.flush()
                except OSError:
                    pass
            before = m._health.writes
            for x in digits.x_test[:40]:
                assert m.predict(x[None]).outputs[0].shape == (1, 10)
                time.sleep(0.01)
            assert m._health.writes == before  # nothing written, nothing raised
            assert read_health(store)["latest"]["calls"] < 40  # the last good snapshot, whole
            (store / "ballast").unlink()
            time.sleep(0.06)
            m.predict(digits.x_test[:1])
            time.sleep(0.1)
            assert m._health.writes == before + 1
    finally:
        subprocess.run(["umount", str(store)], check=False)


def test_the_snapshot_carries_the_canary(tmp_path, digits, digits_models, cli):
    from edgekit.fsutil import sha256_file

    store = tmp_path / "store"
    ModelStore(store, create=True).deploy(digits_models("fp32"))
    code, _, err = cli("deploy", digits_models("int8"), "--store", store, "--canary-calls", "1000")
    assert code == 0, err
    with serve(store, health_every_s=3600, canary_wait=True) as m:
        for x in digits.x_test[:120]:
            m.predict(x[None])
    snap = read_health(store)["latest"]
    canary = snap["canary"]
    assert canary["sha256"] == sha256_file(digits_models("int8")) and canary["compared"] == 120
    assert canary["planned_calls"] == 1000 and canary["disagreed"] <= 12
    inv = tmp_path / "fleet.toml"
    inv.write_text(f'[[device]]\nname = "one"\nhost = "local"\nstore = "{store}"\n')
    code, out, _ = cli("fleet", "status", "--inventory", inv)
    assert code == 0 and f"canary {canary['sha256'][:12]}: compared 100" in out, out
