"""An interpreter older than the converter refuses the model with a message that names the fix.

Runs on the host: tflite-runtime 2.14 (the dev environment has it) against a TF 2.21 dynamic-range
model is exactly what a 32-bit Raspberry Pi sees; tests/pisim/test_armv7l.py checks it on the device.
Each check runs in a fresh process holding only tflite-runtime: two TFLite builds in one process clash
(tests/integration/test_convert.py says the same).
"""

from __future__ import annotations

import subprocess
import sys

from edgekit.engine.tflite import _load_hint

FIX = "edgekit convert --compat tflite-runtime-2.14"


def _refusal(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", "from edgekit.errors import ModelLoadError\ntry:\n"
                        f"    {code}\n    print('loaded')\nexcept ModelLoadError as err:\n    print(err)"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_old_interpreter_refusal_names_the_fix(digits_models):
    text = _refusal("from edgekit.engine.tflite import open_trusted; "
                    f"open_trusted({str(digits_models('dynamic'))!r}, backend='tflite-runtime')")
    assert "tflite-runtime cannot load this model: Didn't find op for builtin opcode 'FULLY_CONNECTED'" in text
    assert FIX in text and "\n" not in text


def test_guarded_load_passes_the_fix_through_the_probe(digits_models):
    text = _refusal("from edgekit.runtime import EdgeModel; "
                    f"EdgeModel.load({str(digits_models('dynamic'))!r}, backend='tflite-runtime')")
    assert "refused by the load probe" in text and FIX in text and "\n" not in text


def test_other_load_failures_get_no_compat_hint():
    assert _load_hint(ValueError("Model provided has model identifier 'abcd', should be 'TFL3'")) == ""
    assert FIX in _load_hint(RuntimeError("Didn't find op for builtin opcode 'CONV_2D' version '7'. An older"))
