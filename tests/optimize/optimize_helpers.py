"""Helpers for the optimize tests: the planted layer's name and an in-process CLI call."""

from __future__ import annotations

from edgekit.optimize.demo import PLANTED  # noqa: F401 - the tests import it from here


def cli(*args) -> tuple[int, str, str]:
    """Run the edgekit CLI in-process; returns (exit code, stdout, stderr)."""
    import contextlib
    import io

    from edgekit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()
