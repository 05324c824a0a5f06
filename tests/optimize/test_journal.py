"""The journal: append-only, fsynced lines; a torn last line is ignored and not glued onto."""

from __future__ import annotations

import json

import numpy as np

from edgekit.optimize.journal import Journal, input_hashes, trial_key


def test_append_and_read_back(tmp_path):
    j = Journal(tmp_path / "w" / "journal.jsonl")
    j.append("k1", "fp32", {"size_bytes": 1})
    j.append("k2", "int8", {"size_bytes": 2})
    assert Journal(j.path).done() == {"k1": {"size_bytes": 1}, "k2": {"size_bytes": 2}}


def test_half_written_last_line_is_ignored_and_the_next_append_survives(tmp_path):
    j = Journal(tmp_path / "journal.jsonl")
    j.append("k1", "fp32", {"size_bytes": 1})
    full = json.dumps({"key": "k2", "name": "int8", "result": {"size_bytes": 2}})
    with open(j.path, "ab") as fh:
        fh.write(full[: len(full) // 2].encode())  # the process died mid-write
    assert j.done() == {"k1": {"size_bytes": 1}}
    j.append("k3", "fp16", {"size_bytes": 3})
    assert j.done() == {"k1": {"size_bytes": 1}, "k3": {"size_bytes": 3}}
    assert j.path.read_text().count("\n") == 3  # the torn line ended, then k3 on its own line


def test_key_changes_with_parameters_and_data(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, x=np.zeros(3))
    np.savez(b, x=np.ones(3))
    params = {"recipe": "int8", "float_layers": []}
    ka = trial_key(params, input_hashes(calibration=a))
    assert ka == trial_key(dict(params), input_hashes(calibration=a))
    assert ka != trial_key(params, input_hashes(calibration=b))
    assert ka != trial_key({**params, "float_layers": ["dense"]}, input_hashes(calibration=a))
