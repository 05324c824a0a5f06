"""The CLI shell and the runtime never import TensorFlow; every module imports without it."""

import pkgutil
import subprocess
import sys

import edgekit

BLOCK_TF = (
    "import sys\n"
    "class _Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name == 'tensorflow' or name.startswith('tensorflow.') or name == 'keras':\n"
    "            raise ImportError('blocked: ' + name)\n"
    "sys.meta_path.insert(0, _Block())\n"
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_help_does_not_import_tensorflow():
    r = _run("import sys\nfrom edgekit.cli import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\nprint('ok')")
    assert r.returncode == 0, r.stderr
    assert "Usage" in r.stdout and r.stdout.strip().endswith("ok")


def test_python_m_edgekit_is_the_cli_without_tensorflow():
    r = subprocess.run([sys.executable, "-c", BLOCK_TF + "import runpy; runpy.run_module('edgekit', run_name='__main__')",
                        "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Usage" in r.stdout and "convert" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-m", "edgekit", "inspect", "/nonexistent.tflite"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr, r.stderr


def test_every_module_imports_with_tensorflow_blocked():
    names = [m.name for m in pkgutil.walk_packages(edgekit.__path__, "edgekit.")]
    assert "edgekit.conversion.pipeline" in names
    r = _run(BLOCK_TF + "import importlib\n" + "".join(f"importlib.import_module({n!r})\n" for n in names)
             + "assert 'tensorflow' not in sys.modules\nprint('ok')")
    assert r.returncode == 0, r.stderr


def test_convert_without_tensorflow_says_what_to_install(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty but valid zip
    r = _run(BLOCK_TF + "from edgekit.cli import main\n"
             f"sys.exit(main(['convert', {str(tmp_path / 'm.keras')!r}, '-o', {str(tmp_path / 'o.tflite')!r}]))")
    assert r.returncode == 2
    assert r.stderr.strip() == "error: converting needs TensorFlow; install it with: pip install 'edgekit[convert]'"


def test_every_module_parses_as_the_oldest_python_requires_python_admits():
    """Grammar newer than requires-python (except*, PEP 695 generics, ...) fails here, in any venv;
    ./dev test also runs the runtime and unit tests on each Python 3.10..3.13 it finds."""
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "edgekit"  # the checkout (the tests may run on an installed copy)
    pyproject = (root.parent / "pyproject.toml").read_text()
    major, minor = map(int, re.search(r'requires-python = ">=(\d+)\.(\d+)"', pyproject).groups())
    assert (major, minor) == (3, 10)
    for path in sorted(root.rglob("*.py")):
        ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=(major, minor))


def test_toml_reading_needs_no_tomllib_on_python_3_10():
    """tomllib is 3.11+; on 3.10 edgekit reads TOML with tomli (a dependency there only)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "edgekit"
    assert re.search(r"""["']tomli>=[\d.]+; python_version < '3\.11'["']""",
                     (root.parent / "pyproject.toml").read_text())
    users = [str(p.relative_to(root)) for p in sorted(root.rglob("*.py"))
             if re.search(r"^\s*import tomllib|^\s*from tomllib", p.read_text(), re.M)]
    assert users == ["tomldata.py"], f"{users}: use `from edgekit.tomldata import tomllib` (tomli on 3.10)"
    assert "if sys.version_info >= (3, 11):\n    import tomllib\nelse:" in (root / "tomldata.py").read_text()
