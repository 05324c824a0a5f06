"""The manifest contract (edgekit.manifest/2): typed sections, validation on read, the v1 migration, the schema.

The damaged manifests start from a real version 1 file that edgekit 0.1.0 wrote for the digits
int8 model (tests/unit/data), migrated and saved as version 2, then broken one field at a time.
"""

import copy
import dataclasses
import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from edgekit.calibration_stats import compute_input_stats
from edgekit.errors import ManifestError
from edgekit.manifest import (
    REVISION, SCHEMA, SCHEMA_FILE, Calibration, GuardThresholds, Manifest, ModelFile, Provenance, TensorSpec, json_schema,
    manifest_path_for, migrate_v1,
)

V1 = Path(__file__).parent / "data" / "digits-int8.v1.manifest.json"


def _v1() -> dict:
    return json.loads(V1.read_text())


def _v2() -> dict:
    return Manifest.from_dict(_v1(), where="v1").to_dict()


def _small() -> Manifest:
    stats = compute_input_stats(np.random.default_rng(0).random((50, 4), dtype=np.float32))
    return Manifest(
        model=ModelFile(file="m.tflite", sha256="ab" * 32, size_bytes=10),
        inputs=(TensorSpec("features", 0, (-1, 4), "int8", 0.0039, -128, tensor="serving_default_features:0"),),
        outputs=(TensorSpec("scores", 9, (-1, 10), "float32"),),
        provenance=Provenance(created="2026-12-01T00:00:00+00:00", tools={"edgekit": "0.1.0"}),
        labels=tuple(str(i) for i in range(10)), task="classification",
        calibration=Calibration(samples=50, source="<array>", inputs={"features": stats}, seed=0),
    )


def test_roundtrip_is_exact_and_typed(tmp_path):
    m = _small()
    path = m.save(tmp_path / "m.tflite")
    assert path == tmp_path / "m.manifest.json" == manifest_path_for(tmp_path / "m.tflite")
    back = Manifest.load(tmp_path / "m.tflite")
    assert back == m and back.inputs[0].quantized and not back.outputs[0].quantized
    assert back.input("features").tensor_name == "serving_default_features:0"
    assert back.input_stats("features").ood.cell_threshold > 0
    assert json.loads(path.read_text())["schema"] == SCHEMA


def test_version_1_is_migrated_and_never_written(tmp_path):
    m = Manifest.from_dict(_v1(), where=str(V1))
    v1 = _v1()
    name = v1["inputs"][0]["name"]
    assert m.schema == SCHEMA and m.input().name == name
    assert m.preprocessing_for(name).height == 8
    assert m.input_stats(name).samples == v1["calibration"]["inputs"][name]["samples"]
    acc = m.accuracy.output()
    assert acc.top1_converted == v1["accuracy"]["top1_converted"] and acc.name == v1["outputs"][0]["name"]
    assert m.provenance.tools["tensorflow"] == v1["tools"]["tensorflow"]
    m.save(tmp_path / "x.tflite")
    assert json.loads((tmp_path / "x.manifest.json").read_text())["schema"] == SCHEMA
    assert migrate_v1(_v1())["schema"] == SCHEMA


def _drop(path):
    def f(d):
        *head, last = path
        for k in head:
            d = d[k]
        del d[last]
    return f


def _set(path, value):
    def f(d):
        *head, last = path
        for k in head:
            d = d[k]
        d[last] = value
    return f


def _rename_stats(d):
    cal = d["calibration"]["inputs"]
    cal["no_such_input"] = cal.pop(next(iter(cal)))


def _first_input_stats(d):
    return next(iter(d["calibration"]["inputs"].values()))


def _bins_short(d):
    _first_input_stats(d)["bins"]["reference_share"][0].pop()


def _sketch_short(d):
    _first_input_stats(d)["ood"]["sketch_mean"].pop()


def _ood_wrong_type(d):
    _first_input_stats(d)["ood"]["cell_threshold"] = "high"


def _accuracy_unknown_output(d):
    d["accuracy"]["outputs"][0]["name"] = "boxes"


def _pre_unknown_input(d):
    pre = d["preprocessing"]
    pre["other"] = pre.pop(next(iter(pre)))


DAMAGE = {  # what is broken -> the field the error must name
    "model removed": (_drop(["model"]), "model"),
    "sha256 removed": (_drop(["model", "sha256"]), "model.sha256"),
    "sha256 not hex": (_set(["model", "sha256"], "zz" * 32), "model.sha256"),
    "size is a string": (_set(["model", "size_bytes"], "12 KB"), "model.size_bytes"),
    "inputs not a list": (_set(["inputs"], {"x": 1}), "inputs"),
    "no inputs": (_set(["inputs"], []), "inputs"),
    "shape has a string": (_set(["inputs", 0, "shape"], [1, "eight", 8, 1]), "inputs[0].shape[1]"),
    "dtype removed": (_drop(["outputs", 0, "dtype"]), "outputs[0].dtype"),
    "scale negative": (_set(["inputs", 0, "scale"], -1.0), "inputs[0].scale"),
    "stats for a missing input": (_rename_stats, "calibration.inputs.no_such_input"),
    "histogram sizes disagree": (_bins_short, "reference_share[0]"),
    "sketch sizes disagree": (_sketch_short, "ood.sketch_mean"),
    "threshold of wrong type": (_ood_wrong_type, "ood.cell_threshold"),
    "ood block removed field": (lambda d: _first_input_stats(d)["ood"].pop("sketch_std"), "ood.sketch_std"),
    "accuracy for a missing output": (_accuracy_unknown_output, "accuracy.outputs[0].name"),
    "agreement above 1": (_set(["accuracy", "outputs", 0, "agreement"], 1.5), "accuracy.outputs[0].agreement"),
    "preprocessing for a missing input": (_pre_unknown_input, "preprocessing.other"),
    "unknown field": (_set(["model", "colour"], "blue"), "model.colour"),
    "task misspelt": (_set(["task"], "classifcation"), "task"),
    "provenance wrong type": (_set(["provenance"], "yesterday"), "provenance"),
    "labels count disagrees": (_set(["labels"], ["a", "b"]), "labels"),
    "NaN in a statistic": (lambda d: _first_input_stats(d)["mean"].__setitem__(0, float("nan")), "mean[0]"),
}


@pytest.mark.parametrize("what", DAMAGE)
def test_damaged_manifest_names_the_field(tmp_path, what):
    breaker, field = DAMAGE[what]
    d = copy.deepcopy(_v2())
    breaker(d)
    p = tmp_path / "m.manifest.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ManifestError) as err:
        Manifest.load(p)
    msg = str(err.value)
    assert str(p) in msg and field in msg and "\n" not in msg


@pytest.mark.parametrize("what", ["removed inputs", "outputs of wrong type", "stats renamed", "accuracy garbage"])
def test_damaged_version_1_files_raise_manifest_error(tmp_path, what):
    d = _v1()
    if what == "removed inputs":
        del d["inputs"]
    elif what == "outputs of wrong type":
        d["outputs"] = "scores"
    elif what == "stats renamed":
        cal = d["calibration"]["inputs"]
        cal["zz"] = cal.pop(next(iter(cal)))
    else:
        d["accuracy"] = {"outputs": [1, 2], "agreement": "x"}
    p = tmp_path / "m.manifest.json"
    p.write_text(json.dumps(d))
    with pytest.raises(ManifestError):  # never KeyError, TypeError or IndexError
        Manifest.load(p)


def test_unreadable_and_foreign_files(tmp_path):
    with pytest.raises(ManifestError, match="no manifest"):
        Manifest.load(tmp_path / "x.tflite")
    assert Manifest.find(tmp_path / "x.tflite") is None
    p = tmp_path / "x.manifest.json"
    p.write_text("{nope")
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.load(p)
    p.write_text(json.dumps({"schema": "edgekit.manifest/99"}))
    with pytest.raises(ManifestError, match="schema"):
        Manifest.load(p)
    p.write_text("[1, 2]")
    with pytest.raises(ManifestError, match="not a JSON object"):
        Manifest.load(p)


def test_writers_refuse_what_readers_would_refuse(tmp_path):
    with pytest.raises(ManifestError, match="guard.target_fpr"):
        _small().replace(guard=GuardThresholds(target_fpr=2.0, set_by="test"))
    m = _small().replace(guard=GuardThresholds(target_fpr=0.01, set_by="test", ood_threshold=1.2))
    m.save(tmp_path / "g.tflite")
    assert Manifest.load(tmp_path / "g.tflite").guard.ood_threshold == 1.2


def test_shipped_schema_is_the_generated_one_and_accepts_real_manifests():
    shipped = json.loads(SCHEMA_FILE.read_text())
    assert shipped == json_schema(), "regenerate it: python -m edgekit.manifest"
    jsonschema.Draft202012Validator.check_schema(shipped)
    jsonschema.validate(_v2(), shipped)
    jsonschema.validate(_small().to_dict(), shipped)
    broken = _v2()
    broken["model"]["size_bytes"] = "big"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, shipped)


def test_a_version_1_model_still_runs_guarded(digits):
    """A model and manifest written by edgekit 0.1.0 (v1) load behind the full guard: stats are found
    through the v1 tensor names, so noise is flagged and a clean digit is not."""
    from edgekit.runtime import EdgeModel

    with EdgeModel.load(V1.with_name("digits-int8.v1.tflite")) as model:
        assert model.manifest.schema == SCHEMA and model.input_guard.scorer is not None
        x = digits.x_test[:20]
        assert model.predict(x).flagged.mean() <= 0.05
        noise = np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32)
        assert model.predict(noise).flagged.all()


def _with_reach(reach=(0.0, 0.1, 1.0, 0.9)) -> Manifest:
    """_small() with the OOD reach feature (a field of revision 1) set to ``reach``."""
    m = _small()
    st = m.calibration.inputs["features"]
    ood = dataclasses.replace(st.ood, reach=reach, colour=None)
    return m.replace(calibration=dataclasses.replace(
        m.calibration, inputs={"features": dataclasses.replace(st, ood=ood)}))


def test_a_manifest_without_new_fields_is_written_at_revision_0_for_older_readers():
    """Fields added in a revision are left out while unset and ``revision`` only appears when used, so a
    device still on an older edgekit reads what this one writes unless a new feature is in it."""
    d = _with_reach(None).to_dict()
    assert "revision" not in d and "requires" not in d and "adopted" not in d["provenance"]
    assert "reach" not in d["calibration"]["inputs"]["features"]["ood"]
    assert _with_reach().to_dict()["revision"] == 1


def test_a_newer_revision_is_read_with_its_unknown_fields_ignored_and_listed(tmp_path):
    d = _with_reach().to_dict()
    d["revision"] = REVISION + 1
    d["calibration"]["inputs"]["features"]["ood"]["texture"] = [0.5, 2.0]  # a feature of a future edgekit
    d["future_section"] = {"x": 1}
    m = Manifest.from_dict(d, where="new.json")
    assert m.ignored == ("calibration.inputs.features.ood.texture", "future_section")
    assert m.input_stats("features").ood.reach == (0.0, 0.1, 1.0, 0.9)
    assert m.summary()["ignored"] == list(m.ignored)
    # the same unknown field in a revision this reader knows is a damaged file, refused as before
    d["revision"] = REVISION
    with pytest.raises(ManifestError, match="future_section: unknown field"):
        Manifest.from_dict(d, where="new.json")


def test_a_must_understand_feature_unknown_here_is_refused_in_one_line():
    d = _small().to_dict()
    d.update(revision=REVISION + 1, requires=["signed-preprocessing"])
    with pytest.raises(ManifestError, match=r"needs a newer edgekit .*signed-preprocessing.*upgrade edgekit") as err:
        Manifest.from_dict(d, where="new.json")
    assert "\n" not in str(err.value)
    d["revision"] = "two"
    with pytest.raises(ManifestError, match="revision: must be a non-negative integer"):
        Manifest.from_dict(d, where="new.json")


def test_a_model_with_a_newer_manifest_still_runs_guarded_and_says_what_it_ignored(digits, tmp_path, caplog):
    from edgekit.runtime import EdgeModel

    model = tmp_path / "digits-int8.tflite"
    model.write_bytes(V1.with_name("digits-int8.v1.tflite").read_bytes())
    d = Manifest.from_dict(_v1(), where="v1").to_dict()
    d["revision"] = REVISION + 1
    name = d["inputs"][0]["name"]
    d["calibration"]["inputs"][name]["ood"]["texture"] = [0.5, 2.0]
    manifest_path_for(model).write_text(json.dumps(d))
    with caplog.at_level("WARNING"), EdgeModel.load(model) as m:
        assert m.health()["model"]["manifest_ignored"] == [f"calibration.inputs.{name}.ood.texture"]
        noise = np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32)
        assert m.predict(noise).flagged.all() and m.predict(digits.x_test[:20]).flagged.mean() <= 0.05
    assert any("newer than this edgekit" in r.getMessage() for r in caplog.records)
