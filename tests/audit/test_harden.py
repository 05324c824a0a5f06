"""Issue 18 item 6: `edgekit harden` fine-tunes the digits CNN against PGD; the hardened model and its int8 file
resist the audit's PGD far better at a small clean cost; the source is never touched; a crash is a clean error."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from edgekit.audit.source_worker import CRASH_HOOK
from edgekit.cli import main
from edgekit.fsutil import sha256_file

EPOCHS = 4  # the full 10-epoch measurement is bench/bench_harden.py


@pytest.fixture(scope="module")
def hardened(digits_keras, digits_npz, tmp_path_factory):
    """(document, output folder) of one CLI run: 4 epochs, int8 files for both models."""
    d = tmp_path_factory.mktemp("harden")
    before = sha256_file(digits_keras)
    out = d / "robust.keras"
    argv = ["harden", str(digits_keras), "--train", str(digits_npz["train"]), "--eval", str(digits_npz["eval"]),
            "-o", str(out), "--epochs", str(EPOCHS), "--recipe", "int8", "--calibration", str(digits_npz["calib"]),
            "--json"]
    out_buf, err_buf = io.StringIO(), Terminal()
    with contextlib.redirect_stdout(out_buf), contextlib.redirect_stderr(err_buf):
        code = main(argv)
    assert sha256_file(digits_keras) == before  # the source is never written
    return code, json.loads(out_buf.getvalue()), d, err_buf.getvalue()


class Terminal(io.StringIO):
    """stderr as a terminal would be: progress bars draw only there."""

    def isatty(self) -> bool:
        return True


def test_harden_gains_robustness_at_a_small_clean_cost(hardened):
    code, doc, d, err = hardened
    assert code == 0 and doc["verdict"]["passed"]
    rows = {(r["model"], r["format"]): r for r in doc["rows"]}
    assert set(rows) == {("source", "keras"), ("hardened", "keras"), ("source", "int8"), ("hardened", "int8")}
    assert doc["epsilons"] == pytest.approx([0.02, 0.05, 0.1, 0.2])  # the audit's shares of the 0..1 range
    for fmt in ("keras", "int8"):
        src, hard = rows[("source", fmt)], rows[("hardened", fmt)]
        assert src["robust"][-1] < 0.15  # PGD at 0.2 breaks the plain CNN...
        assert doc["gain_points"][fmt] >= 20  # ... and far less the hardened one, even after 4 epochs
        assert doc["clean_cost_points"][fmt] <= 5
        assert all(h >= s for h, s in zip(hard["robust"][1:], src["robust"][1:]))
    assert [h["epoch"] for h in doc["training"]] == list(range(1, EPOCHS + 1))
    assert doc["training"][-1]["epsilon"] == pytest.approx(0.2)
    assert (d / "robust.keras").is_file() and (d / "robust-int8.tflite").is_file()
    assert (d / "robust-int8.manifest.json").is_file()
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    # a bar per epoch (batches of 64 clean samples: 1347 training digits) and per model measured
    assert f"epoch {EPOCHS}/{EPOCHS}" in err and "22/22" in err and "PGD hardened" in err and "ETA" in err


@pytest.mark.slow
def test_the_audit_of_the_hardened_file_shows_the_gain(hardened, digits_models, digits_keras, digits_npz):
    from edgekit.audit.run import run_audit

    _, doc, d, _ = hardened
    before = run_audit(digits_models("int8"), digits_keras, digits_npz["eval"], progress=False)
    after = run_audit(d / "robust-int8.tflite", d / "robust.keras", digits_npz["eval"], progress=False)

    def strongest(a):
        return a["adversarial"]["attacks"]["pgd"][-1]

    assert strongest(after)["epsilon"] == pytest.approx(0.2)
    assert strongest(after)["converted"] - strongest(before)["converted"] >= 0.2
    assert strongest(after)["source"] - strongest(before)["source"] >= 0.2
    # the query-only attack on the file itself is blunted too
    bb = [a["blackbox"]["attacks"]["square"][-1]["converted"] for a in (before, after)]
    assert bb[1] > bb[0]


def test_a_crash_in_training_is_a_clean_error_and_writes_nothing(digits_keras, digits_npz, tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.setenv(CRASH_HOOK, "train")
    out = tmp_path / "robust.keras"
    code = main(["harden", str(digits_keras), "--train", str(digits_npz["train"]), "--eval", str(digits_npz["eval"]),
                 "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "stage train: the TensorFlow child process died (signal SIGSEGV)" in err
    assert "TF_ENABLE_ONEDNN_OPTS=0" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("output, extra, message", [
    ("SRC", [], "would overwrite the source model"),
    ("robust.h5", [], "give a file path ending in .keras"),
    ("EXISTS", [], "already exists; pass --force"),
    ("r.keras", ["--recipe", "int9"], "int9"),
    ("r.keras", ["--calibration", "calib.npz"], "give --recipe too"),
])
def test_bad_options_are_refused_before_any_work(digits_keras, digits_npz, tmp_path, capsys, output, extra, message):
    if output == "SRC":
        target = digits_keras
    elif output == "EXISTS":
        target = tmp_path / "taken.keras"
        target.write_bytes(b"keep me")
    else:
        target = tmp_path / output
    code = main(["harden", str(digits_keras), "--train", str(digits_npz["train"]), "--eval", str(digits_npz["eval"]),
                 "-o", str(target), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    if output == "EXISTS":
        assert target.read_bytes() == b"keep me"


def test_unlabelled_training_data_is_bad_input(digits_keras, digits_npz, tmp_path, capsys):
    code = main(["harden", str(digits_keras), "--train", str(digits_npz["calib"]), "--eval", str(digits_npz["eval"]),
                 "-o", str(tmp_path / "r.keras")])
    assert code == 2 and "training data needs labels y" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_third_party_logits_h5_is_hardened_with_a_logits_loss(third_party_h5, digits_npz, tmp_path, capsys):
    """A vendor's legacy .h5 MLP with a logits head (no softmax): the training loss must read logits, or the
    fine-tuning would wreck it; the result is a Keras 3 file that still outputs logits."""
    _, h5, _ = third_party_h5
    out = tmp_path / "vendor-robust.keras"
    code = main(["harden", str(h5), "--train", str(digits_npz["train"]), "--eval", str(digits_npz["eval"]),
                 "-o", str(out), "--epochs", "3", "--epsilon", "0.05", "--epsilon", "0.1", "--min-gain", "5", "--json"])
    doc = json.loads(capsys.readouterr().out)
    src, hard = doc["rows"]
    assert code == 0 and [r["format"] for r in doc["rows"]] == ["keras", "keras"] and src["clean"] > 0.9
    assert doc["epsilons"] == [0.05, 0.1] and doc["settings"]["train_epsilon"] == 0.1
    assert hard["clean"] > 0.85 and doc["gain_points"]["keras"] >= 5  # 10.2 seen: a 48-unit MLP, 3 epochs
    from edgekit.conversion.tf import import_keras

    scores = import_keras().models.load_model(out)(np.load(digits_npz["eval"])["x"][:20]).numpy()
    assert (scores < 0).any() and not np.allclose(scores.sum(axis=1), 1.0)  # logits still
