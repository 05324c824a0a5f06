"""Fleet numbers, measured in one run against real stores behind a real sshd on 127.0.0.1:

- ``fleet status`` wall time for N devices over SSH, in parallel (as shipped) and one device at a time;
- ``fleet incidents``: the first pull and a second one with nothing new;
- what health snapshots cost a served call: serve(..., health_every_s=None) against the default (10 s)
  and against 0.01 s (a snapshot every 10 ms: the worst rate anyone would set), calls alternating in blocks.

Each device is one store with the digits int8 model, served for 200 calls (device 0 fed drifted digits).
Each device has its own sshd (root's openssh-server, as the tests: apt-get install -y openssh-server).

Run:  .venv/bin/python bench/bench_fleet.py [--devices 4 16] [--repeat 3] [--models DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "profile"))


def build_fleet(work: Path, n: int, servers: list, model: Path, x, py: Path) -> Path:
    """N stores, each behind its own sshd (as N devices are: one sshd's MaxStartups would refuse the 11th
    connection at once)."""
    from edgekit.store import ModelStore, serve

    parts = []
    for i in range(n):
        server = servers[i]
        user, host = server.host.split("@")
        opts = ", ".join(f'"{o}"' for o in server.ssh_options)
        store = work / f"store-{n}-{i}"
        ModelStore(store, create=True).deploy(model)
        xs = x * 0.4 + 0.6 * float(x.max()) if i == 0 else x
        with serve(store, health_every_s=0.05) as m:
            for row in xs:
                m.predict(row[None])
        parts.append(f'[[device]]\nname = "dev-{i}"\nhost = "{host}"\nuser = "{user}"\nport = {server.port}\n'
                     f'key = "{server.key}"\npython = "{py}"\nstore = "{store}"\n'
                     f'ring = "{("canary", "early", "all")[i % 3]}"\n'
                     f"ssh_options = [{opts}]\n")
    inv = work / f"fleet-{n}.toml"
    inv.write_text("\n".join(parts))
    return inv


def time_status(inv: Path, parallel: bool) -> float:
    from edgekit.fleet import gather
    from edgekit.fleet.inventory import load_inventory
    from edgekit.fleet.status import fleet_status

    old = gather.MAX_PARALLEL
    gather.MAX_PARALLEL = old if parallel else 1
    try:
        t0 = time.perf_counter()
        doc = fleet_status(load_inventory(inv), timeout_s=60)
        took = time.perf_counter() - t0
    finally:
        gather.MAX_PARALLEL = old
    bad = [(d["name"], d.get("error")) for d in doc["devices"] if d["state"] == "unreachable"]
    assert doc["unhealthy"] == ["dev-0"] and not bad, (doc["unhealthy"], bad)
    return took


def per_call_cost(model: Path, x, work: Path, rounds: int, calls: int) -> dict[str, float]:
    from edgekit.store import ModelStore, serve

    ways = {"off": None, "default 10 s": 10.0, "every 10 ms": 0.01}
    served = {}
    for name, every in ways.items():
        store = work / f"cost-{name.replace(' ', '-')}"
        ModelStore(store, create=True).deploy(model)
        served[name] = serve(store, health_every_s=every)
    times: dict[str, list[float]] = {k: [] for k in ways}
    try:
        for _ in range(rounds):
            for name, m in served.items():
                t0 = time.perf_counter()
                for i in range(calls):
                    m.predict(x[i % len(x)][None])
                times[name].append((time.perf_counter() - t0) / calls * 1e6)
    finally:
        for m in served.values():
            m.close()
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, nargs="+", default=[4, 16])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--models", default=str(Path(tempfile.gettempdir()) / "edgekit-bench-store-models"))
    a = ap.parse_args()
    subprocess.run([sys.executable, str(Path(__file__).with_name("bench_store_powerloss.py")), "--build-only",
                    "--models", a.models], check=True)  # the digits models, built in a child (TensorFlow)
    import sshd
    from edgekit.digits import load_split

    model = Path(a.models) / "digits-int8.tflite"
    x = load_split(seed=0).x_test[:200]
    work = Path(tempfile.mkdtemp(prefix="edgekit-bench-fleet-"))
    servers = [sshd.start(work / f"sshd-{i}") for i in range(max(a.devices))]
    try:
        py = work / "device-python"
        py.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} \"$@\"\n")
        py.chmod(0o755)
        for n in a.devices:
            inv = build_fleet(work, n, servers, model, x, py)
            par = statistics.median(time_status(inv, True) for _ in range(a.repeat))
            ser = statistics.median(time_status(inv, False) for _ in range(a.repeat))
            print(f"fleet status, {n} devices over SSH: parallel {par:.2f} s, one at a time {ser:.2f} s "
                  f"({ser / par:.1f}x); {par / n * 1000:.0f} ms per device in parallel")
            from edgekit.fleet.incidents import pull_fleet
            from edgekit.fleet.inventory import load_inventory

            out = work / f"incidents-{n}"
            t0 = time.perf_counter()
            first = pull_fleet(load_inventory(inv), out)
            t1 = time.perf_counter()
            second = pull_fleet(load_inventory(inv), out)
            t2 = time.perf_counter()
            print(f"fleet incidents, {n} devices: first pull {first['pulled']} records in {t1 - t0:.2f} s, "
                  f"second pull {second['pulled']} records in {t2 - t1:.2f} s")
        cost = per_call_cost(model, x, work, a.rounds, a.calls)
        base = cost["off"]
        print("per served call (median of rounds): " + ", ".join(
            f"snapshots {k} {v:.1f} us ({v / base:.2f}x)" for k, v in cost.items()))
    finally:
        for server in servers:
            sshd.stop(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
