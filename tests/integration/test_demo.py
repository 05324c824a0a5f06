"""`edgekit demo` end to end: trains, converts, and its numbers meet the foundation's acceptance."""

import pytest

from edgekit.cli import main


@pytest.mark.slow
def test_demo_runs_offline_and_meets_acceptance(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path / "demo")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "conversion (accuracy on the held-out split" in out
    assert "guard: the int8 model through EdgeModel" in out and "uniform noise" in out
    assert "profile: 200 runs each" in out and "p50 latency (ms)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split()[:1] in (["fp32"], ["dynamic"], ["int8"])}
    assert set(rows) == {"fp32", "dynamic", "int8"}
    for recipe in ("dynamic", "int8"):
        ratio = float(rows[recipe][3].rstrip("x"))
        assert ratio <= 0.30, f"{recipe} is {ratio}x of fp32"
    assert float(rows["int8"][5]) >= -1.0, "int8 lost more than 1 point of top-1"
    for name in ("digits.keras", "digits-fp32.tflite", "digits-int8.tflite", "digits-int8.manifest.json"):
        assert (tmp_path / "demo" / name).exists()
