"""EdgeModel on the real converted digits models: predictions, the guard's verdicts, monitoring."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from edgekit.errors import InputValidationError
from edgekit.runtime import EdgeModel, Policy


def test_int8_model_predicts_digits_with_float_in_float_out(guarded, digits):
    pred = guarded.predict(digits.x_test)
    assert pred.batched and pred.outputs[0].dtype == np.float32 and pred.output.shape == (450, 10)
    np.testing.assert_allclose(pred.output.sum(axis=1), 1.0, atol=0.05)  # dequantized probabilities
    top1 = np.mean(np.array(pred.label).astype(int) == digits.y_test)
    assert top1 > 0.9
    assert guarded.classifier and guarded.output_checks.guards[0].probability


def test_single_sample_matches_batch_row_and_has_no_batch_axis(guarded, digits):
    batch = guarded.predict(digits.x_test[:5])
    one = guarded.predict(digits.x_test[2])
    assert not one.batched and one.output.shape == (10,)
    np.testing.assert_allclose(one.output, batch.output[2], atol=1e-6)
    labels = one.top_k(3)
    assert len(labels) == 3 and labels[0][0] == batch.label[2] and labels[0][1] >= labels[1][1]


def test_image_forms_give_the_array_answer(guarded, digits, tmp_path):
    pixels = np.round(digits.x_test[0, :, :, 0] * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    (tmp_path / "d.png").write_bytes(buf.getvalue())
    want = guarded.predict(pixels.astype(np.float32)[..., None] / 255).output
    for form in (Image.fromarray(pixels), tmp_path / "d.png", buf.getvalue(), pixels[..., None]):
        np.testing.assert_allclose(guarded.predict(form).output, want, atol=1e-6)


def test_guard_acceptance_on_digits(guarded, digits, ood_sets):
    """Issue 3: flags >= 95% of noise and blank input, <= 2% of clean held-out digits."""
    clean = guarded.predict(digits.x_test).flagged.mean()
    assert clean <= 0.02
    for name, x in ood_sets.items():
        assert guarded.predict(x).flagged.mean() >= 0.95, name


def test_checks_report_each_verdict(guarded, digits, ood_sets):
    ok = guarded.predict(digits.x_test[0])
    verdicts = {c.name: c.ok for c in ok.checks}
    assert verdicts == {"shape": True, "finite": True, "range": True, "int8_clip": True, "ood": True,
                        "output_finite": True, "sums_to_1": True}
    assert ok.ok and ok.sources == ["model"]
    noisy = guarded.predict(ood_sets["noise"][0])
    assert not noisy.ok and noisy.flagged.tolist() == [True] and noisy.ood_score[0] > 1.0
    assert noisy.sources == ["model"]  # default policy: allow (flag + incident), not replace
    assert noisy.incidents[0]["kind"] == "ood" and noisy.incidents[0]["action"] == "allow"
    bright = guarded.predict(np.full((8, 8, 1), 3.0, np.float32))
    failed = {c.name for c in bright.checks if not c.ok}
    assert {"range", "int8_clip", "ood"} <= failed


def test_bad_inputs_raise_and_are_logged(guarded):
    before = guarded.incident_log.counts().get("input", 0)
    for bad in (np.full((8, 8, 1), np.nan, np.float32), np.zeros((7, 7)), None, "nope.png",
                np.zeros((10_000, 8, 8, 1), np.float32)):
        with pytest.raises(InputValidationError):
            guarded.predict(bad)
    assert guarded.incident_log.counts()["input"] == before + 5


def test_health_reports_rolling_stats_and_drift(int8_path, digits, ood_sets):
    model = EdgeModel.load(int8_path)
    for x in digits.x_test[:200]:
        model.predict(x)
    h = model.health()
    assert h["calls"] == 200 and h["samples"] == 200 and h["input"]["drift"] == "stable"
    assert h["model"]["sha256"] == model.sha256 and h["latency_ms"]["p50"] > 0
    assert h["guard_kernel"] == "compiled"  # this machine has a C compiler (tests/runtime/test_native.py)
    assert 0.05 < h["output"]["top1_share"]["3"] < 0.2
    model.predict(ood_sets["inverted"])
    h = model.health()
    assert h["input"]["drift"] == "drifted" and h["incidents"]["ood"] == 1


def test_shadow_mode_records_disagreement(int8_path, fp32_path, digits):
    with EdgeModel.load(int8_path, reference=fp32_path, shadow=0.5) as model:
        for x in digits.x_test[:100]:
            model.predict(x)
        shadow = model.health(wait_for_shadow=True)["shadow"]
    assert shadow["compared"] == 50 and shadow["errors"] == 0
    assert shadow["disagreement_rate"] <= 0.05  # int8 and fp32 agree on nearly every digit


def test_default_action_returns_declared_value(int8_path, ood_sets):
    uniform = [0.1] * 10
    model = EdgeModel.load(int8_path, policy=Policy(on_ood="default", on_input="default", default=uniform))
    pred = model.predict(ood_sets["blank"][:3])
    assert pred.sources == ["default"] * 3 and np.allclose(pred.output, 0.1)
    pred = model.predict(np.full((8, 8, 1), np.inf, np.float32))
    assert pred.sources == ["default"] and pred.incidents[0]["kind"] == "input"


def test_guard_demo_block(digits, int8_path, fp32_path):
    from edgekit.runtime.demo import guard_demo

    text = guard_demo(digits, int8_path, fp32_path)
    rows = {ln.split("  ")[1].strip(): ln for ln in text.splitlines() if ln.startswith("  ") and "%" in ln}
    assert set(rows) == {"clean held-out digits", "uniform noise", "blank (black, white)", "inverted digits"}
    assert "100.0%" in rows["uniform noise"] and "100.0%" in rows["blank (black, white)"]


@pytest.mark.full_env  # tflite-runtime comes with the dev extra only
def test_runs_on_tflite_runtime_too(int8_path, digits, tmp_path):
    """The old interpreter package (armv7l devices) gives the same answers through the same guard.

    In a fresh process, as on a device: two TFLite runtimes in one process clash in C++.
    """
    import subprocess
    import sys

    from edgekit.engine.tflite import available_backends

    if "tflite-runtime" not in [b.name for b in available_backends()]:
        pytest.skip("tflite-runtime is not installed")
    np.save(tmp_path / "x.npy", digits.x_test[:50])
    code = ("import json, numpy as np\nfrom edgekit.runtime import EdgeModel\n"
            f"p = EdgeModel.load({str(int8_path)!r}, backend='tflite-runtime').predict(np.load({str(tmp_path / 'x.npy')!r}))\n"
            "print(json.dumps([p.label, p.flagged.tolist()]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1500:]
    new = EdgeModel.load(int8_path).predict(digits.x_test[:50])
    assert json.loads(r.stdout.splitlines()[-1]) == [new.label, new.flagged.tolist()]
