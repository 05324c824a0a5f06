"""The ``edgekit`` command line: one small module per command, each only parses and calls the library.

Errors: an EdgekitError prints ``error: <one line>`` and exits with its code
(2 bad input, 1 failed check or budget); click's usage errors exit 2 as well.
No traceback reaches a user for a user mistake.

Example:
    $ edgekit convert model.keras -o model.tflite --recipe int8 --calibration calib.npy
"""

from __future__ import annotations

import importlib
import sys

import typer

from ..errors import EdgekitError

app = typer.Typer(
    name="edgekit",
    help="Ship trained models to edge devices: convert, profile and guard TensorFlow Lite models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Each module has register(app). Importing them is cheap: none imports TensorFlow at import time.
COMMAND_MODULES = ("convert", "adopt", "demo", "profile", "compare", "recipes", "targets", "inspect", "check", "run",
                   "audit", "optimize", "deploy", "rollback", "status", "sign", "release", "fleet")

for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (also used by tests)."""
    try:
        app(args=argv, prog_name="edgekit")  # standalone mode: usage errors exit 2 by themselves
    except SystemExit as done:
        code = done.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    except EdgekitError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
