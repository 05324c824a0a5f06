"""Defects of issue 10 in conversion, each pinned by a test that failed before its fix."""

import os

import numpy as np
import pytest

import edgekit
from edgekit.errors import DataError


def test_calibration_sample_is_random_stratified_and_recorded(digits_keras, digits, tmp_path):
    """Class-ordered calibration data (as an image folder reads) over the 1,000-sample limit: the sample
    keeps every class in proportion, and the manifest says how it was drawn (issue 10, item 2)."""
    order = np.argsort(digits.y_train, kind="stable")
    x, y = digits.x_train[order], digits.y_train[order]
    assert len(x) > 1000
    r = edgekit.convert(digits_keras, tmp_path / "s.tflite", recipe="int8", calibration=(x, y),
                        labels=digits.labels, quiet=True)
    cal = r.manifest.calibration
    assert cal.samples == 1000 and cal.available == len(x) and cal.seed == 0
    want = np.bincount(y, minlength=10) * 1000 / len(y)
    got = np.array([cal.class_counts[label] for label in digits.labels])
    assert got.sum() == 1000 and np.abs(got - want).max() <= 1
    # the first 1,000 of this ordering hold no 8s or 9s; the statistics must describe all classes
    stats = next(iter(cal.inputs.values()))
    assert stats.mean[0] == pytest.approx(float(x.mean()), rel=0.02)


def test_mistakes_are_found_before_pruning_and_fine_tuning(digits_keras, digits_npz, tmp_path, monkeypatch):
    """A full-integer recipe without calibration fails before any pruning or fine-tuning (item 3)."""
    from edgekit.conversion import pipeline

    calls = []
    monkeypatch.setattr(pipeline, "prune_model", lambda *a, **k: calls.append(a) or pytest.fail("pruned"))
    with pytest.raises(DataError, match="needs --calibration"):
        edgekit.convert(digits_keras, tmp_path / "p.tflite", recipe="prune50-int8", train_data=digits_npz["train"],
                        quiet=True)
    with pytest.raises(DataError, match="samples have shape"):
        edgekit.convert(digits_keras, tmp_path / "p.tflite", recipe="prune50-int8", train_data=digits_npz["train"],
                        calibration=np.zeros((10, 4, 4, 1), np.float32), quiet=True)
    assert calls == [] and not (tmp_path / "p.tflite").exists()


def test_a_failing_converter_setup_leaks_no_file_descriptor(digits_keras):
    """configure() raising used to leave the dup of stderr open while anything held the error, as an
    app that keeps or logs exceptions does (item 3)."""
    from edgekit.conversion.loader import load_source
    from edgekit.conversion.tflite import to_tflite
    from edgekit.recipes import load_recipe

    src = load_source(digits_keras)
    before = len(os.listdir("/proc/self/fd"))
    kept = []
    for _ in range(3):
        with pytest.raises(DataError) as err:
            to_tflite(src, load_recipe("int8"), None, quiet=True)
        kept.append(err.value)  # its traceback keeps the failed call's frame alive
    assert len(os.listdir("/proc/self/fd")) == before


def test_pruning_shows_its_own_cost_next_to_the_conversions(digits_keras, digits, tmp_path):
    """Pruning 80% without fine-tuning hurts; the manifest, the result and the table say by how much,
    apart from what conversion cost (item 12)."""
    r = edgekit.convert(digits_keras, tmp_path / "p.tflite", recipe="prune80-dynamic",
                        eval_data=(digits.x_test, digits.y_test), quiet=True)
    acc = r.accuracy
    assert acc.top1_original > acc.top1_source  # the unpruned source is measured, not the pruned one
    assert acc.pruning_delta_points == pytest.approx(100 * (acc.top1_source - acc.top1_original))
    assert acc.top1_delta_points == pytest.approx(acc.pruning_delta_points + acc.conversion_delta_points)
    assert "original" in r.table() and f"{acc.pruning_delta_points:+.2f} points" in r.table()


def test_a_labels_file_that_is_not_utf8_is_a_one_line_data_error(digits_keras, digits, tmp_path):
    """Issue 15, item 10: the bytes of a lone surrogate (ED A0 80) in a labels file."""
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"zero\n\xed\xa0\x80\n" + b"".join(b"%d\n" % i for i in range(2, 10)))
    with pytest.raises(DataError, match="labels file is not UTF-8"):
        edgekit.convert(digits_keras, tmp_path / "l.tflite", recipe="fp32", labels=labels,
                        eval_data=(digits.x_test, digits.y_test), quiet=True)
