"""``edgekit run``: predictions with labels, each check's verdict, --json, exit codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from edgekit.cli import main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, digits):
    d = tmp_path_factory.mktemp("inputs")
    Image.fromarray(np.round(digits.x_test[0, :, :, 0] * 255).astype(np.uint8)).save(d / "digit.png")
    np.save(d / "three.npy", digits.x_test[:3])
    np.save(d / "noise.npy", np.random.default_rng(0).uniform(0, 1, (8, 8, 1)).astype(np.float32))
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return d


def test_run_prints_top_k_and_verdicts(int8_path, inputs, digits, capsys):
    code = main(["run", str(int8_path), str(inputs / "digit.png"), str(inputs / "three.npy"), "-k", "2"])
    out = capsys.readouterr().out
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith(f"{inputs / 'digit.png'}: {digits.y_test[0]} (")
    assert f"{inputs / 'three.npy'}[2]: " in out
    assert "ood            ok" in out and "sums_to_1      ok" in out


def test_run_json_and_flagged_exit_code(int8_path, inputs, capsys):
    code = main(["run", str(int8_path), str(inputs / "noise.npy"), "--json"])
    rec = json.loads(capsys.readouterr().out.splitlines()[0])
    assert code == 1  # a check failed
    assert rec["flagged"] == [True] and len(rec["top_k"][0]) == 3
    assert {c["name"]: c["ok"] for c in rec["checks"]}["ood"] is False


def test_run_bad_input_is_exit_2(int8_path, inputs, capsys):
    assert main(["run", str(int8_path), str(inputs / "broken.png")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["run", str(inputs / "digit.png"), str(inputs / "digit.png")]) == 2
