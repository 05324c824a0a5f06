"""The audit on real converted models: the digits int8 model (acceptance figures), a planted-trigger model,
and a third-party Keras .h5 audited with unlabeled eval data. Through the CLI, as a user runs it."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from edgekit.audit.schema import CHECK_KEYS, load as load_audit
from edgekit.cli import main
from edgekit.manifest import Manifest, manifest_path_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits_audit(tmp_path_factory, digits_models, digits_keras, digits_npz):
    """One CLI audit of a copy of the digits int8 model, with --write-threshold; (exit code, doc, html, model)."""
    d = tmp_path_factory.mktemp("audit")
    model = d / "digits-int8.tflite"
    src = digits_models("int8")
    shutil.copy(src, model)
    shutil.copy(manifest_path_for(src), manifest_path_for(model))
    assert main(["profile", str(model), "--runs", "30", "--warmup", "5", "--json", str(d / "profile.json")]) == 0
    code = main(["audit", str(model), "--source", str(digits_keras), "--eval", str(digits_npz["eval"]),
                 "--calibration", str(digits_npz["calib"]), "--train", str(digits_npz["train"]),
                 "--profile", str(d / "profile.json"),
                 "--eval-source", "scikit-learn load_digits, stratified test split, seed 0",
                 "--eval-license", "CC BY 4.0", "--model-license", "Apache-2.0",
                 "-o", str(d / "audit.html"), "--json", str(d / "audit.json"), "--write-threshold"])
    return code, load_audit(d / "audit.json"), (d / "audit.html").read_text(), model


def test_digits_int8_meets_the_acceptance_figures(digits_audit):
    code, doc, html, _ = digits_audit
    assert code == 0, doc["verdict"]
    guard = doc["guard"]["default_policy"]
    assert guard["detection"]["noise"] >= 0.95 and guard["detection"]["constant"] >= 0.95
    assert guard["false_positive_rate"] <= 0.02
    # the attack is real: the strongest setting costs the source at least 30 points ...
    rows = [r for rs in doc["adversarial"]["attacks"].values() for r in rs]
    assert max(r["source_drop_points"] for r in rows) >= 30
    # ... and the report shows what reached the int8 file, at every epsilon
    for r in rows:
        assert r["converted"] is not None and f"{r['converted_drop_points']:.1f}" in html
    noise = doc["robustness"]["perturbations"]["gaussian_noise"]["points"]
    assert len(noise) >= 4
    for p in noise:  # the int8-against-float gap at every noise level, in the page
        gap = re.escape(f"{p['gap_points']:+.2f}")
        assert re.search(rf"<td>{p['strength']:g}</td><td>[\d.]+%</td><td>[\d.]+%</td><td>{gap}</td>", html)


def test_digits_report_schema_and_sections(digits_audit):
    _, doc, html, _ = digits_audit
    assert doc["schema"] == "edgekit.audit/1" and doc["reference"]["kind"] == "labels"
    for c in doc["checks"]:
        assert set(CHECK_KEYS) <= set(c) and isinstance(c["passed"], bool)
    names = {c["name"] for c in doc["checks"]}
    assert {"accuracy.drop", "robustness.max_gap", "adversarial.max_gap", "classes.worst_drop",
            "guard.false_positive_rate", "guard.detection.noise", "guard.detection.inverted",
            "backdoor.patch_success", "data.leakage"} <= names
    assert len(doc["classes"]["classes"]) == 10
    assert {"input", "output", "combined"} == set(doc["guard"]["signals"])
    assert doc["guard"]["output_signal"] == "msp"
    assert doc["data"]["leakage"]["train"]["eval_samples"] == 450
    gov = doc["governance"]
    assert gov["datasets"][0]["declared_license"] == "CC BY 4.0" and gov["model_license"] == "Apache-2.0"
    assert gov["datasets"][0]["file_sha256"] and gov["conversion_tools"]["tensorflow"]
    assert len(gov["nist_ai_rmf"]["measure_2"]) == 13
    assert html.count("<svg") >= 10 and "MEASURE 2.7" in html and "Verdict: PASS" in html
    assert doc["profile"]["rows"][0]["p50_ms"] > 0 and "Latest profile" in html


def test_write_threshold_stores_the_suggestion_in_the_manifest(digits_audit):
    _, doc, _, model = digits_audit
    stored = Manifest.load(model).guard
    s = doc["guard"]["suggested"]
    assert stored.ood_threshold == s["ood_threshold"] and stored.output_signal == "msp"
    assert stored.target_fpr == 0.01 and stored.set_by.startswith("edgekit audit")


def test_backdoor_probe_flags_the_planted_model_and_passes_the_clean_one(planted_model, digits_audit,
                                                                        digits_npz, tmp_path):
    model, src = planted_model
    code = main(["audit", str(model), "--source", str(src), "--eval", str(digits_npz["eval"]),
                 "-o", str(tmp_path / "a.html"), "--json", str(tmp_path / "a.json")])
    planted = json.loads((tmp_path / "a.json").read_text())
    assert code == 1 and "backdoor.patch_success" in planted["verdict"]["failed"]
    w = planted["backdoor"]["worst"]
    assert planted["backdoor"]["suspicious"] and w["target_label"] == "7" and w["where"] == "bottom-right"
    clean = digits_audit[1]["backdoor"]
    assert not clean["suspicious"]
    print(f"planted: success {w['success']:.3f} concentration {w['concentration']:.3f}; "
          f"clean: success {clean['worst']['success']:.3f} concentration {clean['worst']['concentration']:.3f}")


def test_third_party_h5_with_unlabeled_eval_data_gets_a_complete_report(third_party_h5, tmp_path, capsys):
    model, h5, unlabeled = third_party_h5
    code = main(["audit", str(model), "--source", str(h5), "--eval", str(unlabeled),
                 "-o", str(tmp_path / "v.html"), "--json", str(tmp_path / "v.json")])
    doc = load_audit(tmp_path / "v.json")
    assert code in (0, 1)
    assert doc["reference"]["kind"] == "source_top1" and "no labels" in doc["reference"]["note"]
    assert doc["accuracy"]["source"] == 1.0  # agreement with itself, by definition
    assert doc["guard"]["output_signal"] == "energy"  # the vendor model outputs logits
    assert all("skipped" not in doc[s] for s in ("robustness", "adversarial", "classes", "guard", "backdoor"))
    assert len(doc["robustness"]["perturbations"]) == 7
    html = (tmp_path / "v.html").read_text()
    assert "source model&#x27;s top-1 is the reference label" in html
    assert "report: " in capsys.readouterr().out


def test_bad_input_exits_2_with_one_line(digits_models, digits_keras, digits_npz, tmp_path, capsys):
    model = digits_models("int8")
    assert main(["audit", str(model), "--source", str(digits_keras), "--eval", str(tmp_path / "none.npz")]) == 2
    assert "none.npz: eval file or folder not found" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    import numpy as np

    np.savez(bad, x=np.zeros((4, 3)))
    assert main(["audit", str(model), "--source", str(digits_keras), "--eval", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the model input wants (8, 8, 1)" in err
    assert main(["audit", str(model), "--source", str(digits_keras), "--eval", str(digits_npz["eval"]),
                 "--target-fpr", "3"]) == 2


def test_vector_model_without_calibration_statistics_says_what_the_guard_cannot_see(tmp_path, digits):
    """A flat (64,) input converted without calibration data: no input score, no image corruptions, no patch
    probe; the guard then misses plain noise, and the audit fails on it instead of passing silently."""
    import numpy as np

    import edgekit
    from edgekit.conversion.tf import import_keras

    keras = import_keras()
    keras.utils.set_random_seed(2)
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    mlp = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                            keras.layers.Dense(10, activation="softmax")])
    mlp.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    mlp.fit(flat(digits.x_train), digits.y_train, epochs=10, batch_size=32, verbose=0)
    mlp.save(tmp_path / "flat.keras")
    r = edgekit.convert(tmp_path / "flat.keras", tmp_path / "flat.tflite", recipe="dynamic", quiet=True)
    np.savez(tmp_path / "eval.npz", x=flat(digits.x_test), y=digits.y_test)
    np.save(tmp_path / "scribbles.npy", np.random.default_rng(0).uniform(0, 1, (200, 64)).astype(np.float32))
    code = main(["audit", str(r.output), "--source", str(tmp_path / "flat.keras"), "--eval", str(tmp_path / "eval.npz"),
                 "--ood", str(tmp_path / "scribbles.npy"), "--json", str(tmp_path / "a.json")])
    doc = load_audit(tmp_path / "a.json")
    assert code == 1 and "guard.detection.noise" in doc["verdict"]["failed"]
    assert "guard.detection.scribbles" in {c["name"] for c in doc["checks"]}
    assert list(doc["robustness"]["perturbations"]) == ["gaussian_noise", "scaling"]
    assert set(doc["guard"]["signals"]) == {"output"} and doc["guard"]["suggested"]["ood_threshold"] is None
    assert "skipped" in doc["backdoor"] and "eval data" in doc["reference"]["value_range_from"]
    assert (tmp_path / "flat.audit.html").exists()  # the default report path, next to the model
