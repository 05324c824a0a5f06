"""edgekit optimize end to end on the planted model: the pick, the journal, an interrupted run, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optimize_helpers import PLANTED, cli

FAST = ("--workers", "2", "--runs", "30", "--float-top-k", "2")


def half_fp32_kb(planted) -> float:
    """Half the float32 weight bytes in KiB (a little under half the fp32 file, which adds its graph)."""
    from edgekit.conversion.loader import load_source

    return 0.5 * 4 * load_source(planted["source"]).keras.count_params() / 1024


def optimize_args(planted, out: Path, *extra: str) -> list:
    return ["optimize", planted["source"], "-o", out, "-c", planted["calib"], "-e", planted["eval"],
            "--max-accuracy-drop", "1.0", *FAST, *extra]


@pytest.mark.slow
def test_optimize_finds_a_small_candidate_within_one_point_and_resumes(tmp_path, planted):
    out = tmp_path / "best.tflite"
    size_kb = half_fp32_kb(planted)
    code, text, err = cli(*optimize_args(planted, out, "--max-size-kb", f"{size_kb:.1f}", "--json"))
    assert code == 0, err
    doc = json.loads(text)
    rows = {r["name"]: r for r in doc["rows"]}
    pick = rows[doc["selection"]["pick"]]
    assert rows["int8"]["drop_points"] > 2.0  # plain int8 loses more than 2 points here
    assert pick["drop_points"] <= 1.0
    assert pick["size_bytes"] <= 0.5 * rows["fp32"]["size_bytes"]
    assert doc["debug"]["layers"][0]["layer"] == PLANTED  # the debug report names the planted layer first
    assert f"int8-float-io+float({PLANTED})" in rows
    # the written file is the pick's, with its manifest
    m = json.loads(out.with_name("best.manifest.json").read_text())
    assert m["model"]["sha256"] == pick["sha256"] and m["model"]["file"] == "best.tflite"
    assert out.stat().st_size == pick["size_bytes"]
    # fp16 meets the accuracy budget but not the size budget; the table says so
    assert rows["fp16"]["size_bytes"] > size_kb * 1024 and "fp16" not in doc["selection"]["meeting_budgets"]

    # a rerun converts nothing: every trial comes from the journal
    code, text, err = cli(*optimize_args(planted, out, "--max-size-kb", f"{size_kb:.1f}", "--json", "--force"))
    assert code == 0, err
    again = json.loads(text)
    assert again["trials_run"] == 0 and again["trials_reused"] == len(doc["rows"])
    assert {r["name"]: r["sha256"] for r in again["rows"]} == {r["name"]: r["sha256"] for r in doc["rows"]}

    # a budget no candidate meets: exit 1, the closest named, nothing written
    code, text, err = cli(*optimize_args(planted, tmp_path / "none.tflite", "--max-size-kb", "5"))
    assert code == 1
    assert "no candidate meets every budget" in err and "closest:" in err and "size by" in err
    assert "candidate" in text and "over: size" in text  # the table still prints
    assert not (tmp_path / "none.tflite").exists()


@pytest.mark.slow
def test_an_interrupted_run_loses_no_finished_trial(tmp_path, planted):
    out = tmp_path / "m.tflite"
    journal = tmp_path / "m.optimize" / "journal.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [sys.executable, "-c", "from edgekit.cli import entry; entry()",
           *map(str, optimize_args(planted, out, "--candidates", "fp32,fp16,dynamic,int8", "--workers", "1"))]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if journal.exists() and journal.read_text().count("\n") >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-trial
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = journal.read_text().count("\n")
    assert finished >= 2 and not out.exists()
    code, text, err = cli(*optimize_args(planted, out, "--candidates", "fp32,fp16,dynamic,int8", "--json"))
    assert code == 0, err
    doc = json.loads(text)
    assert doc["trials_reused"] == finished and doc["trials_run"] == 4 - finished


def test_bad_input_exits_2(tmp_path, planted):
    code, _, err = cli("optimize", planted["source"], "-o", tmp_path / "x.tflite", "-c", planted["calib"])
    assert code == 2 and "--eval" in err
    code, _, err = cli("optimize", tmp_path / "missing.keras", "-o", tmp_path / "x.tflite", "-e", planted["eval"])
    assert code == 2 and "missing.keras" in err
    code, _, err = cli(*optimize_args(planted, tmp_path / "x.tflite", "--max-size-kb", "-3"))
    assert code == 2 and "--max-size-kb" in err
    code, _, err = cli(*optimize_args(planted, tmp_path / "x.tflite", "--candidates", "nope"))
    assert code == 2 and "fp32" in err
    assert "Traceback" not in err


def test_target_without_host_says_whose_speed_ranks(tmp_path, planted):
    """Issue 19 item 3: the ranking is by this machine's speed, not the target's, and the output says so."""
    out = tmp_path / "fp32.tflite"
    code, text, err = cli("optimize", planted["source"], "-o", out, "-e", planted["eval"], "--candidates", "fp32",
                          "--workers", "1", "--runs", "10", "--float-top-k", "0", "--target", "raspberry-pi-4")
    assert code == 0, err
    assert "note: ranked by this machine's speed, not raspberry-pi-4's: pass --host" in text
