"""Every string in edgekit's source can be written as UTF-8.

A docstring that said "\\ud800" without escaping the backslash held a lone surrogate: Python 3.11
imported it, but Python 3.13 on the emulated Raspberry Pi (trixie) failed to import edgekit.manifest
with UnicodeEncodeError, so nothing of edgekit ran there.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "edgekit"


def test_no_string_constant_holds_a_lone_surrogate():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                try:
                    node.value.encode("utf-8")
                except UnicodeEncodeError:
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert bad == [], f"escape the backslash (\\\\ud800) in: {', '.join(bad)}"
