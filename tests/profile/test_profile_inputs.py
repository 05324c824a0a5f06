"""Every model input gets data: seeded random, or the user's arrays matched by input name, checked up front."""

import json
import sys

import numpy as np
import pytest

from edgekit.cli import main
from edgekit.errors import UsageError
from edgekit.profile import child, feeds, profiler

IMAGE, FEATURES = "serving_default_image:0", "serving_default_features:0"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _inputs(doc):
    return {i["name"]: i for i in doc["rows"][0]["inputs"]}


def test_the_converter_reordered_the_inputs(two_io_model):
    # what makes matching by name necessary: position 0 is not the first Keras input
    assert [i.name for i in feeds.model_inputs(two_io_model)] == [FEATURES, IMAGE]
    assert feeds.model_inputs(two_io_model)[1].aliases == (IMAGE, "image")


def test_random_data_for_every_input(two_io_model):
    doc = profiler.profile_model(two_io_model, runs=10, warmup=1)
    ins = _inputs(doc)
    assert ins[IMAGE]["shape"] == [1, 8, 8, 1] and ins[FEATURES]["shape"] == [1, 4]
    assert ins[IMAGE]["samples"] == ins[FEATURES]["samples"] == 1
    assert doc["settings"]["input"] == "random"


def test_name_equals_file_per_input_by_signature_or_tensor_name(two_io_model, tmp_path):
    np.save(tmp_path / "img.npy", np.random.default_rng(1).random((6, 8, 8, 1), np.float32))
    np.save(tmp_path / "feat.npy", np.ones((3, 4), np.float32))
    doc = profiler.profile_model(two_io_model, runs=12, warmup=1,
                                 input=[f"image={tmp_path / 'img.npy'}", f"{FEATURES}={tmp_path / 'feat.npy'}"])
    ins = _inputs(doc)
    assert ins[IMAGE]["samples"] == 6 and ins[FEATURES]["samples"] == 3
    assert doc["settings"]["input"] == {IMAGE: str(tmp_path / "img.npy"), FEATURES: str(tmp_path / "feat.npy")}


def test_one_npz_keyed_by_input_name_and_random_for_the_rest(two_io_model, tmp_path):
    np.savez(tmp_path / "both.npz", image=np.zeros((4, 8, 8, 1), np.float32), features=np.zeros((1, 4), np.float32))
    doc = profiler.profile_model(two_io_model, runs=5, warmup=1, input=tmp_path / "both.npz")
    assert _inputs(doc)[IMAGE]["samples"] == 4 and _inputs(doc)[FEATURES]["samples"] == 1
    np.save(tmp_path / "img.npy", np.zeros((8, 8, 1), np.float32))  # one sample without the batch axis
    doc = profiler.profile_model(two_io_model, runs=5, warmup=1, input=["random", f"image={tmp_path / 'img.npy'}"])
    assert doc["settings"]["input"] == {IMAGE: str(tmp_path / "img.npy"), FEATURES: "random"}


@pytest.mark.parametrize("make, needle", [
    (lambda d: [f"pixels={d / 'img.npy'}"], "the model has no input named 'pixels'; its inputs: features, image"),
    (lambda d: [f"features={d / 'bad.npy'}"],
     "input 'serving_default_features:0' has shape [1, 4]; the file holds [2, 5]"),
    (lambda d: [str(d / "img.npy")], "the model has 2 inputs (features, image); use NAME=FILE.npy per input"),
    (lambda d: [str(d / "odd.npz")], "odd.npz[label]: the model has no input named 'label'"),
    (lambda d: [f"image={d / 'img.npy'}", f"image={d / 'img.npy'}"], "input 'image' already has data"),
    (lambda d: [f"image={d / 'missing.npy'}"], "no such file"),
])
def test_bad_input_is_one_line_exit_2_before_any_child_starts(two_io_model, tmp_path, monkeypatch, capsys,
                                                               make, needle):
    np.save(tmp_path / "img.npy", np.zeros((2, 8, 8, 1), np.float32))
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))
    np.savez(tmp_path / "odd.npz", image=np.zeros((1, 8, 8, 1), np.float32), label=np.zeros(1))

    def no_child(*a, **k):
        raise AssertionError("a child was started")

    monkeypatch.setattr(profiler, "run_process", no_child)
    args = [a for v in make(tmp_path) for a in ("--input", v)]
    code, _, err = run(capsys, "profile", two_io_model, *args)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: --input ") and needle in err, err


def test_bad_input_over_ssh_fails_before_anything_is_copied(ssh_server, two_io_model, tmp_path, capsys):
    device = tmp_path / "device"
    code, _, err = run(capsys, "profile", two_io_model, "--host", ssh_server.host, "--host", "nobody@localhost",
                       "--input", f"pixels={tmp_path}/x.npy", "--ssh-key", ssh_server.key, "--ssh-port",
                       ssh_server.port, "--remote-dir", device,
                       *[a for o in ssh_server.ssh_options for a in ("--ssh-option", o)])
    assert code == 2 and "no input named 'pixels'" in err and not device.exists()


def test_both_input_files_travel_over_ssh(ssh_server, two_io_model, tmp_path, capsys):
    np.save(tmp_path / "img.npy", np.zeros((5, 8, 8, 1), np.float32))
    np.save(tmp_path / "feat.npy", np.zeros((2, 4), np.float32))
    out = tmp_path / "r.json"
    code, _, err = run(capsys, "profile", two_io_model, "--host", ssh_server.host, "--runs", 10,
                       "--input", f"image={tmp_path / 'img.npy'}", "--input", f"features={tmp_path / 'feat.npy'}",
                       "--json", out, "--ssh-key", ssh_server.key, "--ssh-port", ssh_server.port,
                       "--remote-python", sys.executable, "--remote-dir", tmp_path / "device",
                       *[a for o in ssh_server.ssh_options for a in ("--ssh-option", o)])
    assert code == 0, err
    ins = _inputs(json.loads(out.read_text()))
    assert ins[IMAGE]["samples"] == 5 and ins[FEATURES]["samples"] == 2
    assert len(list((tmp_path / "device").glob("*.npy"))) == 2


def test_random_data_stays_inside_each_inputs_calibration_range():
    """The child's random data: uniform in [lo, hi] per input, quantized for an integer input."""
    float_in = {"name": "a", "shape": [1, 50], "dtype": np.float32, "quantization": (0.0, 0)}
    int8_in = {"name": "b", "shape": [1, 50], "dtype": np.int8, "quantization": (0.01, -100)}
    wide = {"name": "c", "shape": [1, 50], "dtype": np.float32, "quantization": (0.0, 0)}
    spec = {"seed": 0, "ranges": {"a": [2.0, 3.0], "b": [-0.2, 0.5]}}
    a, b, c = (s[0] for s in child.make_inputs(np, [float_in, int8_in, wide], spec))
    assert a.dtype == np.float32 and 2.0 <= a.min() and a.max() <= 3.0
    real = (b.astype(np.float32) + 100) * 0.01
    assert b.dtype == np.int8 and -0.2 - 0.005 <= real.min() and real.max() <= 0.5 + 0.005
    assert 0.0 <= c.min() and c.max() < 1.0  # no range known: [0, 1)


def test_the_manifests_calibration_range_reaches_the_child(digits_models):
    plan = profiler.plan_inputs(digits_models("fp32"), None)
    ((name, (lo, hi)),) = plan.spec["ranges"].items()
    assert name == IMAGE and lo == 0.0 and hi == 1.0  # digits pixels are scaled to [0, 1]
