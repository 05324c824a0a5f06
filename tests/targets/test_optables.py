"""The op tables are data that match reality: the shipped tflite-runtime 2.14 table agrees with the
real package, each profile's op_set and interpreter table exist, the tables ship in the package."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path


from edgekit.devices import list_profiles, load_profile
from edgekit.engine.tflite_info import load_model_info
from edgekit.targets import interpreter_table, load_table

REPO = Path(__file__).resolve().parents[2]


def _deriver():
    spec = importlib.util.spec_from_file_location("derive_op_tables", REPO / "scripts" / "derive_op_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tflite_runtime_table_matches_the_real_package(digits_models, tmp_path):
    """For every op the digits models use: max version resolves in tflite-runtime 2.14, max+1 does not."""
    from ai_edge_litert import schema_py_generated as s

    table = interpreter_table("tflite-runtime", "tflite-runtime-2.14")
    used = {o.name for r in ("fp32", "int8", "dynamic", "int8-float-io") for o in load_model_info(digits_models(r)).ops}
    derive = _deriver()
    cases = []
    for name in sorted(used):
        top = table.max_version[name]
        for version, expect in ((top, True), (top + 1, False)):
            path = tmp_path / f"{name}-{version}.tflite"
            path.write_bytes(derive.one_op_model(getattr(s.BuiltinOperator, name), version))
            cases.append((str(path), expect))
    code = ("import sys\nfrom tflite_runtime.interpreter import Interpreter\n"
            "for p in sys.argv[1:]:\n"
            "    try:\n        Interpreter(model_path=p); print('found')\n"
            "    except ValueError as e: print('missing' if \"Didn't find op\" in str(e) else 'found')\n")
    out = subprocess.run([sys.executable, "-c", code, *[c[0] for c in cases]], capture_output=True, text=True,
                         timeout=120)
    got = out.stdout.split()
    assert len(got) == len(cases), out.stderr[-500:]
    for (path, expect), seen in zip(cases, got):
        assert (seen == "found") == expect, path
    assert table.max_version["FULLY_CONNECTED"] == 10  # measured; TF 2.21 dynamic range writes v12


def test_every_profile_resolves_its_tables():
    for name in list_profiles():
        p = load_profile(name)
        if p.op_set:
            assert load_table(p.op_set).ops
        t = interpreter_table(p.interpreter, p.compat)
        assert t is None or "CONV_2D" in t.ops


def test_edgetpu_and_tflm_sets():
    tpu, tflm = load_table("edgetpu"), load_table("tflm")
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "MAX_POOL_2D"} <= tpu.ops
    assert "DEQUANTIZE" not in tpu.ops and "LEAKY_RELU" not in tpu.ops  # documented as unsupported
    assert len(tflm.ops) > 80 and "TFLite_Detection_PostProcess" in tflm.custom_ops
    assert "SOFTMAX" in tpu.limits


def test_light_imports():
    code = ("import sys, edgekit.targets, edgekit.inspection, edgekit.cli.check, edgekit.cli.inspect, "
            "edgekit.cli.targets\nfrom edgekit.targets import check_model\n"
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr[-500:]
