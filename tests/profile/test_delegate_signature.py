"""An external delegate by path (with its options) and a signature by name, in the engine and the profiler.

The delegate is real: tests/profile/record_delegate.c, built with gcc here, speaks the plugin ABI the
interpreters' load_delegate() uses (libedgetpu.so.1 speaks the same one), claims no node and writes
the options it was given and "prepared" to a file. The two-signature model is converted by real
TensorFlow from a tf.Module with two functions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekit.cli import main
from edgekit.engine.tflite import open_tflite
from edgekit.errors import ModelLoadError, UsageError
from edgekit.profile import profile_model

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def record_delegate(tmp_path_factory) -> Path:
    gcc = shutil.which("gcc") or shutil.which("cc")
    assert gcc, "a C compiler builds the test delegate: apt-get install gcc"
    lib = tmp_path_factory.mktemp("delegate") / "librecord_delegate.so"
    subprocess.run([gcc, "-shared", "-fPIC", "-O1", "-o", str(lib), str(HERE / "record_delegate.c")], check=True)
    return lib


@pytest.fixture(scope="session")
def two_signatures(tmp_path_factory) -> Path:
    """A .tflite with signatures 'scale' (x: [1, 4] -> y = 3x) and 'shift' (a: [1, 2] -> b = a + 10)."""
    from edgekit.conversion.tf import import_tf

    tf = import_tf()

    class Two(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
        def scale(self, x):
            return {"y": x * 3.0}

        @tf.function(input_signature=[tf.TensorSpec([1, 2], tf.float32, name="a")])
        def shift(self, a):
            return {"b": a + 10.0}

    d = tmp_path_factory.mktemp("two-sigs")
    m = Two()
    tf.saved_model.save(m, str(d / "sm"), signatures={"scale": m.scale, "shift": m.shift})
    conv = tf.lite.TFLiteConverter.from_saved_model(str(d / "sm"), signature_keys=["scale", "shift"])
    out = d / "two.tflite"
    out.write_bytes(conv.convert())
    return out


def test_engine_runs_a_signature_by_name_with_its_own_names(two_signatures):
    s = open_tflite(two_signatures, signature="shift")
    assert [t.name for t in s.inputs] == ["a"] and [t.name for t in s.outputs] == ["b"]
    assert s.inputs[0].shape[-1] == 2
    (b,) = s.run({"a": np.array([[1.0, 2.0]], np.float32)})
    np.testing.assert_allclose(b, [[11.0, 12.0]])
    (y,) = open_tflite(two_signatures, signature="scale").run([np.ones((1, 4), np.float32)])
    np.testing.assert_allclose(y, np.full((1, 4), 3.0))


def test_an_unknown_signature_is_one_line_naming_the_ones_there(two_signatures):
    with pytest.raises(UsageError) as err:
        open_tflite(two_signatures, signature="serving_default")
    msg = str(err.value)
    assert "no signature named 'serving_default'" in msg and "scale, shift" in msg and "\n" not in msg


def test_engine_loads_an_external_delegate_by_path_with_its_options(record_delegate, two_signatures, tmp_path):
    log = tmp_path / "delegate.log"
    s = open_tflite(two_signatures, delegate=str(record_delegate),
                    delegate_options={"record": str(log), "device": "usb"}, signature="scale")
    (y,) = s.run([np.ones((1, 4), np.float32)])  # the CPU kernels ran what the delegate did not claim
    np.testing.assert_allclose(y, np.full((1, 4), 3.0))
    lines = log.read_text().splitlines()
    assert f"option record={log}" in lines and "option device=usb" in lines and "prepared" in lines


def test_a_static_shape_delegate_on_a_dynamic_batch_model_says_to_fix_the_batch(record_delegate, digits_models):
    # Like the Edge TPU's, the test delegate does not take dynamic tensors; the digits model has batch -1.
    with pytest.raises(ModelLoadError) as err:
        open_tflite(digits_models("int8"), delegate=str(record_delegate))
    assert "edgekit convert --batch-size 1" in str(err.value) and "\n" not in str(err.value)


def test_a_delegate_that_does_not_load_is_one_line(record_delegate, two_signatures, tmp_path):
    for library, opts in ((str(tmp_path / "libmissing.so"), None), (str(record_delegate), {"fail": "1"})):
        with pytest.raises(ModelLoadError) as err:
            open_tflite(two_signatures, delegate=library, delegate_options=opts)
        assert f"the delegate {library} could not be loaded" in str(err.value) and "\n" not in str(err.value)


def test_profile_measures_with_the_delegate_and_the_signature(record_delegate, two_signatures, tmp_path):
    log = tmp_path / "delegate.log"
    doc = profile_model(two_signatures, runs=20, warmup=2,
                        load={"delegate": str(record_delegate), "delegate_options": {"record": str(log)},
                              "signature": "scale"})
    row = doc["rows"][0]
    assert row["interpreter"]["delegate"] == str(record_delegate) and row["interpreter"]["signature"] == "scale"
    assert row["inputs"][0]["name"].startswith("scale") and row["inputs"][0]["shape"] == [1, 4]  # its subgraph
    assert doc["settings"]["load"]["signature"] == "scale"
    assert "prepared" in log.read_text()  # the delegate was applied in the measuring child


def test_profile_cli_takes_delegate_signature_and_refuses_bad_ones(record_delegate, two_signatures, tmp_path, capsys):
    log, out = tmp_path / "cli.log", tmp_path / "p.json"
    code = main(["profile", str(two_signatures), "--runs", "10", "--warmup", "1", "--delegate", str(record_delegate),
                 "--delegate-option", f"record={log}", "--delegate-option", "device=usb", "--signature", "shift",
                 "--json", str(out)])
    assert code == 0
    assert json.loads(out.read_text())["rows"][0]["inputs"][0]["shape"] == [1, 2]  # shift takes a: [1, 2]
    assert "option device=usb" in log.read_text().splitlines()
    capsys.readouterr()
    cases = ((["--signature", "nope"], "no signature named 'nope'"),
             (["--delegate", str(tmp_path / "libnone.so")], "the external delegate could not be loaded"),
             (["--delegate-option", "device"], "write KEY=VALUE"),
             (["--delegate-option", "device=usb"], "needs --delegate"))
    for extra, said in cases:
        code = main(["profile", str(two_signatures), "--runs", "5", "--warmup", "0", *extra])
        err = capsys.readouterr().err
        assert code == 2 and said in err and "Traceback" not in err, (extra, err)


def test_open_model_probes_then_loads_with_the_delegate_and_signature(record_delegate, two_signatures, tmp_path):
    from edgekit.engine import open_model

    log = tmp_path / "probe.log"
    s = open_model(two_signatures, load={"delegate": str(record_delegate), "delegate_options": {"record": str(log)},
                                         "signature": "shift"})
    np.testing.assert_allclose(s.run({"a": np.zeros((1, 2), np.float32)})[0], [[10.0, 10.0]])
    assert log.read_text().count("prepared") >= 2  # once in the probe's child, once here
    with pytest.raises(ModelLoadError) as err:  # the probe's own refusal, one line
        open_model(two_signatures, load={"signature": "missing"})
    assert "no signature named 'missing'" in str(err.value)


def test_edgemodel_serves_a_signature_through_an_external_delegate_behind_the_guard(record_delegate, two_signatures,
                                                                                   tmp_path):
    from edgekit.runtime import EdgeModel, Policy

    log = tmp_path / "edgemodel.log"
    with EdgeModel.load(two_signatures, delegate=str(record_delegate), delegate_options={"record": str(log)},
                        signature="shift", policy=Policy(on_load="raise", verify_sha256=False)) as model:
        assert model.input_names == ["a"] and model.output_names == ["b"]
        np.testing.assert_allclose(model.predict(np.array([[1.0, 2.0]], np.float32)).output, [[11.0, 12.0]])
        with pytest.raises(Exception, match="NaN|finite"):
            model.predict(np.array([[np.nan, 1.0]], np.float32))  # the guard still stands in front of it
    assert log.read_text().count("prepared") >= 2  # the load probe's child and this process
    with pytest.raises(ModelLoadError, match="no signature named 'nope'"):  # refused by the load probe
        EdgeModel.load(two_signatures, signature="nope", policy=Policy(on_load="raise", verify_sha256=False))
