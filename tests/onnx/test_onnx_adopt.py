"""edgekit adopt on an ONNX file edgekit did not write (as a PyTorch export arrives): a manifest, then the guard."""

from __future__ import annotations

import json
import shutil

import numpy as np

from edgekit.cli import main
from edgekit.manifest import Manifest, manifest_path_for
from edgekit.runtime import EdgeModel


def test_adopt_an_onnx_file_then_guard_it(digits_onnx, digits, noise, tmp_path, capsys):
    model = tmp_path / "exported.onnx"
    shutil.copyfile(digits_onnx, model)  # the bare file: no manifest next to it
    # the input named as the model names it ("image"), as a PyTorch user's npz would
    np.savez(tmp_path / "calib.npz", image=digits.x_calib)
    np.savez(tmp_path / "eval.npz", image=digits.x_test, y=digits.y_test)
    code = main(["adopt", str(model), "--calibration", str(tmp_path / "calib.npz"),
                 "--eval", str(tmp_path / "eval.npz"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["provenance"]["adopted"]["sha256"] == Manifest.find(model).model.sha256
    m = Manifest.find(model)
    assert manifest_path_for(model).name == "exported.onnx.manifest.json" and m.model.file == "exported.onnx"
    assert m.task == "classification" and m.accuracy.output().top1_converted > 0.9
    with EdgeModel.load(model) as guarded:
        assert guarded.predict(digits.x_test[:20]).flagged.mean() <= 0.1
        assert guarded.predict(noise[:20]).flagged.mean() >= 0.9
