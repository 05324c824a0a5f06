"""edgekit release (issue 19 item 1): a signed evidence bundle with a CycloneDX 1.6 ML-BOM, for the digits int8 model."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from edgekit.cli import main
from edgekit.fsutil import _umask

import model_signing  # noqa: E402,F401  (edgekit[sign], in the dev extra: missing, this fails rather than skips)


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def keypair(folder: Path, name: str = "key") -> tuple[Path, Path]:
    key, pub = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True)
    subprocess.run(["openssl", "ec", "-in", str(key), "-pubout", "-out", str(pub)], check=True, capture_output=True)
    return key, pub


@pytest.fixture(scope="module")
def released(digits_models, tmp_path_factory):
    """A bundle for the digits int8 model judged against raspberry-pi-4, profiled here (not on the target)."""
    d = tmp_path_factory.mktemp("release")
    key, pub = keypair(d)
    out = d / "bundle"
    code = main(["release", str(digits_models("int8")), "--target", "raspberry-pi-4", "--key", str(key),
                 "--runs", "20", "-o", str(out)])
    assert code == 0
    return {"bundle": out, "key": key, "pub": pub, "dir": d}


def test_bundle_holds_model_manifest_reports_bom_and_summary(released, digits_models):
    b = released["bundle"]
    names = {p.name for p in b.iterdir()}
    model = digits_models("int8")
    assert {model.name, model.with_suffix("").name + ".manifest.json", "check.json", "check.html", "profile.json", "profile.html",
            "bom.cdx.json", "summary.json", "release.sig", "release.pub.pem"} <= names
    assert (b / model.name).read_bytes() == model.read_bytes()
    assert b.stat().st_mode & 0o777 == 0o777 & ~_umask()  # a folder like any other, not mkdtemp's 0700
    s = json.loads((b / "summary.json").read_text())
    gates = {g["name"]: g for g in s["gates"]}
    assert gates["check"]["status"] == "pass"
    # profiled on this x86 machine: never device evidence for a Pi
    assert gates["budget"]["status"] == "not measured" and "not on raspberry-pi-4" in gates["budget"]["detail"]
    assert s["device_evidence"] is False
    assert gates["audit"]["status"] == "not run"
    assert s["passed"] is True and s["signed"] is True and s["target"] == "raspberry-pi-4"


def test_bom_is_valid_cyclonedx_1_6_with_a_model_card(released):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = (released["bundle"] / "bom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    bom = json.loads(text)
    model = bom["components"][0]
    assert model["type"] == "machine-learning-model"
    assert {h["alg"] for h in model["hashes"]} == {"SHA-256", "SHA-512"}
    card = model["modelCard"]
    metrics = {m["type"] for m in card["quantitativeAnalysis"]["performanceMetrics"]}
    assert {"latency p95 (ms)", "peak memory (MB)"} <= metrics
    assert any("not measured on the target" in m.get("slice", "") for m in
               card["quantitativeAnalysis"]["performanceMetrics"])
    assert any("audit: not run" in t for t in card["considerations"]["technicalLimitations"])
    kinds = {c["type"] for c in bom["components"]}
    assert {"data", "device"} <= kinds  # the calibration set from the manifest and the target
    assert {t["name"] for t in bom["metadata"]["tools"]["components"]} >= {"edgekit", "ai-edge-litert"}


def test_signature_verifies_and_a_changed_byte_does_not(released, tmp_path):
    import shutil

    from edgekit.errors import SignatureError
    from edgekit.release.evidence import check_bundle

    ev = check_bundle(released["bundle"], target="raspberry-pi-4", trusted_keys=[released["pub"]])
    assert ev.summary["passed"]
    for name in sorted(p.name for p in released["bundle"].iterdir() if p.name != "release.sig"):
        copy = tmp_path / name / "bundle"
        shutil.copytree(released["bundle"], copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 1
        (copy / name).write_bytes(bytes(data))
        with pytest.raises(SignatureError, match="does not verify"):
            check_bundle(copy, target="raspberry-pi-4", trusted_keys=[released["pub"]])


def test_a_failed_gate_exits_1_listing_it_and_bad_input_exits_2(released, digits_models, capsys):
    out = released["dir"] / "mcu"
    code, text, err = run(capsys, "release", digits_models("fp32"), "--target", "coral-edge-tpu", "--runs", 5,
                          "--key", released["key"], "-o", out)
    assert code == 1, err
    assert err.strip().splitlines()[-1].startswith("error: release gates failed: check (")
    assert json.loads((out / "summary.json").read_text())["failed"] == ["check"]
    code, _, err = run(capsys, "release", digits_models("int8"), "--target", "raspberry-pi-4", "-o", out)
    assert code == 2 and "exists and is not an empty folder" in err and err.count("\n") == 1
    # --force replaces an earlier bundle, never a folder of other files (nothing lost)
    mine = released["dir"] / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = run(capsys, "release", digits_models("int8"), "--target", "raspberry-pi-4", "-o", mine, "--force")
    assert code == 2 and "replaces only a release bundle" in err and (mine / "notes.txt").read_text() == "keep me"


# ---- the store that requires evidence (issue 19 item 2) ----------------------------------------------------------

def _store_files(store: Path) -> dict[str, bytes]:
    """Everything in the store but its incident log (a refusal records an incident and changes nothing else)."""
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*"))
            if p.is_file() and not p.name.startswith("incidents.jsonl") and p.name != "lock"}


def _incidents(store: Path) -> list[dict]:
    path = store / "incidents.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def test_deploy_a_bundle_into_a_store_requiring_evidence_and_status_shows_it(released, tmp_path, capsys):
    store = tmp_path / "store"
    code, out, err = run(capsys, "deploy", released["bundle"], "--store", store, "--require-evidence",
                         "--target", "raspberry-pi-4", "--trust", released["pub"])
    assert code == 0, err
    assert out.startswith("activated ")
    code, out, err = run(capsys, "status", "--store", store)
    assert code == 0, err
    assert "evidence   required for raspberry-pi-4" in out
    assert "active's evidence: released for raspberry-pi-4" in out
    assert "check pass, budget not measured, audit not run (timings not on the target)" in out
    code, out, _ = run(capsys, "status", "--store", store, "--json")
    doc = json.loads(out)
    assert doc["active"]["evidence"]["passed"] is True and doc["evidence_required"]["target"] == "raspberry-pi-4"


def test_a_store_requiring_evidence_refuses_each_bad_deploy_one_line_each(released, digits_models, tmp_path, capsys):
    import shutil

    store = tmp_path / "store"
    assert run(capsys, "deploy", released["bundle"], "--store", store, "--require-evidence",
               "--target", "raspberry-pi-4")[0] == 0
    before = _store_files(store)
    changed = tmp_path / "changed"
    shutil.copytree(released["bundle"], changed)
    (changed / "profile.json").write_bytes((changed / "profile.json").read_bytes().replace(b'"runs": 20', b'"runs": 21'))
    other = tmp_path / "other"
    assert main(["release", str(digits_models("dynamic")), "--target", "raspberry-pi-5", "--runs", "5",
                 "--key", str(released["key"]), "-o", str(other)]) == 0
    failed = released["dir"] / "failed-gate"
    if not failed.exists():
        main(["release", str(digits_models("fp32")), "--target", "coral-edge-tpu", "--runs", "5",
              "--key", str(released["key"]), "-o", str(failed)])
    capsys.readouterr()
    cases = [(digits_models("int8"), "requires evidence for raspberry-pi-4: deploy a release bundle"),
             (changed, "does not verify"),
             (other, "a bundle for 'raspberry-pi-5'")]
    for i, (what, needle) in enumerate(cases):
        code, _, err = run(capsys, "deploy", what, "--store", store)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and needle in lines[0], (what, err)
        assert _store_files(store) == before  # nothing changed in the store
        assert len(_incidents(store)) == i + 1 and _incidents(store)[-1]["kind"] == "evidence"
    # a failed gate: refused by a store requiring evidence for any target (the bundle is for the Edge TPU)
    any_target = tmp_path / "any"
    code, _, err = run(capsys, "deploy", failed, "--store", any_target, "--require-evidence")
    assert code == 2 and err.count("\n") == 1 and "release gates failed (check)" in err, err
    assert not list((any_target / "objects").iterdir()) and _incidents(any_target)[-1]["action"] == "refused"


@pytest.mark.slow
def test_release_with_the_audit_puts_its_figures_and_data_sets_into_the_bom(digits_models, digits_keras, digits_npz,
                                                                             tmp_path, capsys):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    key, _ = keypair(tmp_path)
    out = tmp_path / "audited"
    code, text, err = run(capsys, "release", digits_models("int8"), "--target", "raspberry-pi-4", "--key", key,
                          "--runs", 10, "--eval", digits_npz["eval"], "--source", digits_keras, "-o", out)
    summary = json.loads((out / "summary.json").read_text())
    gates = {g["name"]: g["status"] for g in summary["gates"]}
    assert gates["audit"] in ("pass", "fail") and code == (0 if summary["passed"] else 1), err
    assert (out / "audit.json").is_file() and (out / "audit.html").is_file()
    bom_text = (out / "bom.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(bom_text) is None
    bom = json.loads(bom_text)
    audit = json.loads((out / "audit.json").read_text())
    metrics = {m["type"] for m in bom["components"][0]["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]}
    assert {c["name"] for c in audit["checks"] if c.get("value") is not None} <= metrics
    eval_set = next(c for c in bom["components"] if c["type"] == "data" and c["name"] == "eval.npz")
    assert eval_set["hashes"][0]["content"] == hashlib.sha256(digits_npz["eval"].read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["deleted", "repaired"])
def test_the_evidence_rule_survives_a_lost_index(released, digits_models, tmp_path, capsys, damage):
    """--require-evidence cannot be undone by losing index.json: the rule is read back from the history."""
    store = tmp_path / "store"
    assert run(capsys, "deploy", released["bundle"], "--store", store, "--require-evidence",
               "--target", "raspberry-pi-4")[0] == 0
    index = store / "index.json"
    if damage == "deleted":
        index.unlink()
    else:
        index.write_bytes(b"{not json")
        assert run(capsys, "status", "--store", store, "--repair")[0] == 0
    code, _, err = run(capsys, "deploy", digits_models("int8"), "--store", store)  # a bare model
    assert code == 2 and "requires evidence for raspberry-pi-4" in err, err


def test_json_prints_the_summary(released, digits_models, tmp_path, capsys):
    code, out, err = run(capsys, "release", digits_models("int8"), "--target", "raspberry-pi-4", "--runs", 5,
                         "-o", tmp_path / "b", "--json")
    doc = json.loads(out)
    assert code == 0, err
    assert doc["target"] == "raspberry-pi-4" and {g["name"] for g in doc["gates"]} >= {"check", "budget"}
