"""edgekit targets: list, show one by name or by path, clear errors for bad profile files."""

from __future__ import annotations

import json

from edgekit.cli import main


def test_list_and_show(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for name in ("raspberry-pi-3b", "coral-edge-tpu", "microcontroller", "jetson-orin-nano"):
        assert name in out
    assert main(["targets", "raspberry-pi-3b"]) == 0
    out = capsys.readouterr().out
    assert "tflite-runtime-2.14" in out and "armv7l" in out and "raspberrypi.com" in out
    assert main(["targets", "microcontroller", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["interpreter"] == "tflite-micro" and doc["arena_kb"] > 0
    assert main(["targets", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) >= 9


def test_user_file_by_path_and_errors(tmp_path, capsys):
    good = tmp_path / "bench-board.toml"
    good.write_text('arch = "aarch64"\ncores = 2\nmemory_mb = 1024\nmax_latency_ms = 80\n')
    assert main(["targets", str(good), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "bench-board"
    missing_field = tmp_path / "half.toml"
    missing_field.write_text('arch = "aarch64"\ncores = 2\n')
    assert main(["targets", str(missing_field)]) == 2
    err = capsys.readouterr().err
    assert "missing required field 'memory_mb'" in err and str(missing_field) in err
    typo = tmp_path / "typo.toml"
    typo.write_text('arch = "aarch64"\ncores = 2\nmemory_mb = 1024\nmax_latncy_ms = 80\n')
    assert main(["targets", str(typo)]) == 2
    assert "unknown key 'max_latncy_ms'" in capsys.readouterr().err
    assert main(["targets", str(tmp_path / "nope.toml")]) == 2
    assert "no such" in capsys.readouterr().err
    assert main(["targets", "raspbery-pi-4"]) == 2
    assert "choose one of" in capsys.readouterr().err
