"""The store's incidents.jsonl: edgekit.store.serve writes it with the Policy's bounds (issue 15 item 12), and the
store's own incidents respect the lock its other writers rotate it under (item 3)."""

from __future__ import annotations

import fcntl
import json
import os
import threading

import numpy as np

from edgekit.runtime import Policy
from edgekit.runtime.incidents import dropped_records
from edgekit.store import ModelStore, serve


def test_serve_rotates_the_incident_file_by_the_policys_bounds(tmp_path, good_int8):
    st = ModelStore(tmp_path / "s", create=True)
    st.deploy(good_int8)
    path = st.layout.incidents
    noise = np.random.default_rng(0).uniform(0, 16, (1, 8, 8, 1)).astype(np.float32)  # OOD: an incident a call
    policy = Policy(incident_log_max_bytes=4096, incident_log_backups=1)
    with serve(st.root, policy=policy, reference_rate=0) as served:
        for _ in range(60):
            served.predict(noise)
        status = served.health()["incident_log"]
        logged = served.health()["incidents"]["ood"]
    assert (status["max_bytes"], status["backups"]) == (4096, 1) and status["rotations"] > 0
    assert path.stat().st_size <= 4096 and not path.with_name("incidents.jsonl.2").exists()
    kept = [json.loads(line) for f in (path, path.with_name("incidents.jsonl.1")) for line in f.read_text().splitlines()]
    assert sum(r["kind"] == "ood" for r in kept) + dropped_records(path) == logged == 60


def test_store_incidents_wait_while_another_writer_holds_the_incident_files_lock(tmp_path):
    st = ModelStore(tmp_path / "s", create=True)
    path = st.layout.incidents
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another writer, in the middle of a rotation
    writer = threading.Thread(target=st.incident, args=("store", "while rotating", "none", None))
    writer.start()
    writer.join(1.0)
    try:
        assert writer.is_alive() and not (path.exists() and path.read_text())  # nothing written under the lock
    finally:
        os.close(fd)  # releases the lock
    writer.join()
    assert [r["reason"] for r in st.incidents()] == ["while rotating"]
