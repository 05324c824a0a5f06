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


def test_help_has_examples_and_imports_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys\nfrom edgekit.cli import main\n"
            "for c in ('inspect', 'check', 'targets'):\n    main([c, '--help'])\n"
            "assert 'tensorflow' not in sys.modules\nprint('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stderr
    for cmd in ("edgekit inspect digits-int8.tflite", "edgekit check digits-int8.tflite --target coral-edge-tpu",
                "edgekit targets raspberry-pi-3b"):
        assert f"Example: {cmd}" in r.stdout
