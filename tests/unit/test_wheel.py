"""The built wheel carries converters/ and profiles/, and they are found from the installed package."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_holds_data_and_reads_it(tmp_path):
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(REPO)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = tmp_path.glob("edgekit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    recipes = {Path(n).stem for n in names if n.startswith("edgekit/_data/converters/")}
    profiles = {Path(n).stem for n in names if n.startswith("edgekit/_data/profiles/")}
    assert {p.stem for p in (REPO / "converters").glob("*.toml")} == recipes
    assert {p.stem for p in (REPO / "profiles").glob("*.toml")} == profiles
    optables = {Path(n).name for n in names if n.startswith("edgekit/targets/data/")}
    assert {p.name for p in (REPO / "edgekit" / "targets" / "data").glob("*.toml")} == optables
    assert {"edgetpu.toml", "tflm.toml", "ops-tflite-runtime-2.14.toml"} <= optables
    # installed (unpacked) wheel, imported from outside the repo: reads its own packaged data
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import edgekit.tomldata as t, edgekit.recipes as r, edgekit.targets as g; "
            "print(t.data_dir('converters')); print(r.load_recipe('int8').name); "
            "print(g.load_table('edgetpu').name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    where, name, table = out.stdout.split()
    assert where.startswith(str(site)) and name == "int8" and table == "edgetpu"
