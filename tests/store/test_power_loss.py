"""kill -9 at every step of a store write and at random moments: the store always opens on a valid,
verified version, and edgekit.store.serve serves it. (The full 1,000: bench/bench_store_powerloss.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from edgekit.fsutil import sha256_file
from edgekit.store import ModelStore
from edgekit.store.store import CRASH_ENV, STEPS


@pytest.mark.slow
def test_kill_at_every_step_and_at_random_moments(tmp_path, good, good_int8, good_dynamic, broken):
    # in a small process of its own: forking this one (it holds TensorFlow) would cost more than the writes
    r = subprocess.run([sys.executable, "-m", "edgekit.store.crashtest", "--root", str(tmp_path / "s"), "--count",
                        "100", "--seed", "1", "--serve", *map(str, (good, good_int8, good_dynamic, broken))],
                       capture_output=True, text=True, timeout=600)
    stats = json.loads(r.stdout)
    assert stats["injections"] == 100
    assert stats["invalid"] == 0, stats["problems"]
    assert stats["served"] == 100
    assert stats["killed"] >= 50  # most injections landed inside a write
    # every step of every kind of write was reached and killed at least once
    for op in ("deploy", "promote"):
        for step in STEPS:
            assert f"{op}:{step}#1" in stats["steps_killed"], (op, step)
    for step in ("locked", "index-written", "index-renamed", "event-appended"):
        assert f"rollback:{step}#1" in stats["steps_killed"]
        assert f"promote:{step}#2" in stats["steps_killed"]  # the promotion itself, after the staging


@pytest.mark.parametrize("step", ["model-half-written", "object-renamed", "index-written", "index-renamed"])
def test_cli_deploy_killed_at_a_step_leaves_the_previous_version(tmp_path, good, good_int8, step):
    """The real command in its own process, SIGKILLed at a step through the environment variable."""
    store = tmp_path / "s"
    ModelStore(store, create=True).deploy(good)
    env = dict(os.environ, **{CRASH_ENV: step})
    r = subprocess.run([sys.executable, "-m", "edgekit.store", "deploy", str(good_int8), "--store", str(store)],
                       env=env, capture_output=True)
    assert r.returncode == -signal.SIGKILL
    st = ModelStore(store)
    version, problems = st.resolve()
    expected = good_int8 if step == "index-renamed" else good  # after the rename the new index is the truth
    assert problems == [] and version.sha256 == sha256_file(expected)
    assert (st.layout.object(sha256_file(good)) / "model.tflite").exists()  # the previous version stays
    # the next writer cleans up and finishes the job
    st.deploy(good_int8)
    assert st.open().sha256 == sha256_file(good_int8) and list(st.layout.tmp.iterdir()) == []
    assert [e["event"] for e in st.history()][-1] == "activate"
