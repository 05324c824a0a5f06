"""edgekit.store.serve: follows activations between calls, runs the canary, rolls back by itself."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from edgekit.fsutil import sha256_file
from edgekit.runtime import EdgeModel
from edgekit.store import serve
from edgekit.store import ModelStore


def accuracy(model_path, digits) -> float:
    with EdgeModel.load(model_path) as m:
        return float((m.predict(digits.x_test).outputs[0].argmax(axis=1) == digits.y_test).mean())


def test_serves_the_active_version_and_follows_a_deploy_between_calls(tmp_path, good, good_int8, digits):
    st = ModelStore(tmp_path / "s", create=True)
    st.deploy(good)
    x = digits.x_test[:1]
    with serve(st.root) as served:
        assert served.sha256 == sha256_file(good)
        p1 = served.predict(x)
        assert p1._model.sha256 == sha256_file(good)
        # another process deploys: the next call serves the new version, without a restart
        subprocess.run([sys.executable, "-m", "edgekit.store", "deploy", str(good_int8), "--store", str(st.root)],
                       check=True, capture_output=True)
        p2 = served.predict(x)
        assert p2._model.sha256 == sha256_file(good_int8) == served.sha256
        assert p1.label == p2.label


def test_calls_in_flight_finish_on_their_model_while_the_store_swaps(tmp_path, good, good_int8, digits):
    st = ModelStore(tmp_path / "s", create=True)
    st.deploy(good)
    known = {sha256_file(good), sha256_file(good_int8)}
    errors, seen = [], set()
    stop = threading.Event()
    served = serve(st.root, reference_rate=0)

    def caller():
        while not stop.is_set():
            try:
                pred = served.predict(digits.x_test[:4])
                assert pred.outputs[0].shape == (4, 10) and np.isfinite(pred.outputs[0]).all()
                seen.add(pred._model.sha256)
            except Exception as err:  # noqa: BLE001 - any failure here is the test's finding
                errors.append(repr(err))

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(8):
        model = good_int8 if i % 2 == 0 else good
        st.deploy(model)
        # the callers pick the new version up between calls: wait for it (loading takes longer on a busy
        # machine than any fixed sleep), while they keep calling through the swap
        deadline = time.monotonic() + 60
        while served.sha256 != sha256_file(model) and time.monotonic() < deadline and not errors:
            time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    served.close()
    assert errors == [] and seen == known


def _canary(tmp_path, active, candidate, calls, **budgets):
    st = ModelStore(tmp_path / "s", create=True)
    st.deploy(active)
    sha = st.deploy(candidate, canary={"calls": calls, "budgets": budgets})["sha256"]
    return st, sha


def _drive(served, x, limit):
    """Call until the candidate is decided; returns the number of calls it took."""
    for i in range(limit):
        served.predict(x[i % len(x)])
        if served._slot.canary is None:
            return i + 1
    return None


def test_a_good_candidate_is_promoted_after_its_calls(tmp_path, good, good_int8, digits):
    st, sha = _canary(tmp_path, good, good_int8, 120)
    with serve(st.root, canary_wait=True) as served:
        took = _drive(served, digits.x_test, 500)
        assert served.sha256 == sha
    assert took == 120
    ev = st.history()[-1]
    assert ev["event"] == "promote" and ev["figures"]["compared"] == 120
    assert ev["figures"]["disagreement"] <= 0.05 and ev["figures"]["errors"] == 0


def test_a_broken_candidate_is_rejected_within_its_call_budget(tmp_path, good, broken, digits):
    gap = accuracy(good, digits) - accuracy(broken, digits)
    assert gap > 0.10  # the broken candidate is more than 10 points worse (measured, not assumed)
    st, sha = _canary(tmp_path, good, broken, 200)
    with serve(st.root, canary_wait=True) as served:
        took = _drive(served, digits.x_test, 500)
        assert served.sha256 == sha256_file(good)
    assert took is not None and took < 50  # early: its disagreements already exceed what 200 calls allow
    ev = st.history()[-1]
    assert ev["event"] == "reject" and ev["sha256"] == sha and "disagreement" in ev["reason"]
    assert st.incidents()[-1]["kind"] == "canary"
    assert sha in st.index()["bad"] and st.index()["candidate"] is None


def test_the_canary_runs_off_the_callers_thread_by_default(tmp_path, good, broken, digits):
    st, sha = _canary(tmp_path, good, broken, 100)
    with serve(st.root) as served:
        for i in range(2000):
            served.predict(digits.x_test[i % 450])
            if served._slot.canary is None:
                break
            if i % 50 == 49:
                time.sleep(0.01)  # give the shadow thread the core now and then, like real traffic would
        assert served.sha256 == sha256_file(good)
    assert st.history()[-1]["event"] == "reject"


def test_a_slow_candidate_is_rejected_on_latency(tmp_path, good, good_int8, digits):
    st, sha = _canary(tmp_path, good, good_int8, 30, max_latency_ms=0.000001)
    with serve(st.root, canary_wait=True) as served:
        assert _drive(served, digits.x_test, 100) == 30
    assert "latency" in st.history()[-1]["reason"]


def test_a_time_limited_canary_decides_after_its_minutes(tmp_path, good, good_int8, digits):
    st = ModelStore(tmp_path / "s", create=True)
    st.deploy(good)
    sha = st.deploy(good_int8, canary={"calls": None, "minutes": 0.005})["sha256"]  # 0.3 s
    with serve(st.root, canary_wait=True) as served:
        t0 = time.monotonic()
        took = None
        for i in range(100000):
            served.predict(digits.x_test[i % 450])
            if served._slot.canary is None:
                took = time.monotonic() - t0
                break
        assert served.sha256 == sha
    assert took is not None and took >= 0.3


def test_a_candidate_changed_after_staging_is_refused_at_activation(tmp_path, good, good_int8, digits):
    st, sha = _canary(tmp_path, good, good_int8, 20)
    obj = st.layout.object(sha) / "model.tflite"
    obj.write_bytes(obj.read_bytes()[:-1] + b"\0")
    with serve(st.root, canary_wait=True) as served:
        for i in range(40):
            served.predict(digits.x_test[i])
        assert served.sha256 == sha256_file(good)
    ev = st.history()[-1]
    assert ev["event"] == "reject" and "does not" in ev["reason"]


def test_automatic_rollback_when_the_new_version_disagrees_with_the_previous(tmp_path, good, broken, digits):
    st = ModelStore(tmp_path / "s", create=True)
    st.deploy(good)
    bad = st.deploy(broken)["sha256"]  # activated directly, no canary: the health watch must catch it
    with serve(st.root, reference_rate=1.0) as served:
        for i in range(300):
            served.predict(digits.x_test[i % 450])
            time.sleep(0.001) if i % 20 == 0 else None
        assert served.sha256 == sha256_file(good)
    ev = st.history()[-1]
    assert ev["event"] == "rollback" and ev["previous"] == bad and "disagreement" in ev["reason"]
    assert any(i["kind"] == "rollback" and i["model_sha256"] == bad for i in st.incidents()) and bad in st.index()["bad"]


def test_automatic_rollback_under_induced_drift(tmp_path, good, good_int8, digits):
    st = ModelStore(tmp_path / "s", create=True)
    a = st.deploy(good)["sha256"]
    b = st.deploy(good_int8)["sha256"]
    drifted = (16.0 - digits.x_test).astype(np.float32)  # inverted digits: the sensor went wrong
    with serve(st.root) as served:
        for i in range(150):
            served.predict(digits.x_test[i])  # normal traffic first: no rollback
        assert served.sha256 == b
        for i in range(300):
            served.predict(drifted[i % 450])
        assert served.sha256 == a
        for i in range(300):  # the restored version is not rolled back further by itself
            served.predict(drifted[i % 450])
        assert served.sha256 == a
    rollbacks = [e for e in st.history() if e["event"] == "rollback"]
    assert len(rollbacks) == 1 and "OOD storm" in rollbacks[0]["reason"] and rollbacks[0]["previous"] == b


def test_readers_in_other_processes_always_see_a_valid_version_during_swaps(tmp_path, good, good_int8):
    st = ModelStore(tmp_path / "s", create=True)
    st.deploy(good)
    reader = textwrap.dedent(f"""
        import time, sys
        from edgekit.store import ModelStore
        n = bad = 0
        end = time.monotonic() + 4
        while time.monotonic() < end:
            v, problems = ModelStore({str(st.root)!r}).resolve()
            n += 1
            bad += bool(problems) or v.sha256 not in {{{sha256_file(good)!r}, {sha256_file(good_int8)!r}}}
        print(n, bad)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", reader], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    swaps = 0
    t_end = time.monotonic() + 3
    while time.monotonic() < t_end:
        st.deploy(good_int8 if swaps % 2 == 0 else good)
        swaps += 1
    results = [p.communicate(timeout=60)[0].split() for p in procs]
    assert swaps > 5
    for n, bad in results:
        assert int(n) > 10 and int(bad) == 0


def test_bad_input_answered_by_the_default_policy_does_not_break_the_canary(tmp_path, good, good_int8, digits):
    from edgekit.runtime import Policy

    st, sha = _canary(tmp_path, good, good_int8, 20)
    with serve(st.root, canary_wait=True, policy=Policy(on_input="default", default=0.1)) as served:
        pred = served.predict(np.full((8, 8, 1), np.nan, np.float32))
        assert pred.sources == ["default"]
        assert _drive(served, digits.x_test, 100) == 20
        assert served.sha256 == sha
