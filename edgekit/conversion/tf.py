"""Lazy, quiet TensorFlow imports: the only place edgekit imports TensorFlow.

TensorFlow prints to stdout ("Saved artifact at ...") and to the C++ log on
every conversion. ``captured()`` redirects both file descriptors so edgekit's own
output stays clean, and keeps the text for error messages.

Example:
    >>> tf = import_tf()                       # doctest: +SKIP
    >>> with captured() as log:                # doctest: +SKIP
    ...     tflite_bytes = converter.convert()
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile

from ..errors import MissingDependencyError

_HINT = "converting needs TensorFlow; install it with: pip install 'edgekit[convert]'"


def import_tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with captured():
            import tensorflow as tf
    except ImportError:
        raise MissingDependencyError(_HINT) from None
    tf.get_logger().setLevel("ERROR")
    return tf


def import_keras():
    import_tf()
    import keras

    return keras


class _Captured:
    text = ""


@contextlib.contextmanager
def captured():
    """Redirect fd 1 and fd 2 (Python and C++ output) to a temp file; ``.text`` holds it."""
    box = _Captured()
    py_out = io.StringIO()  # Python-level prints go to sys.stdout, which may not be fd 1 (pytest)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            with contextlib.redirect_stdout(py_out):
                yield box
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            tmp.seek(0)
            box.text = tmp.read().decode("utf-8", "replace") + py_out.getvalue()
