"""The parsed-manifest cache behind EdgeModel.load (edgekit/manifest_cache.py): the same bytes come back as
the same Manifest without a parse; other bytes or other parser code are parsed again; a damaged or
hostile entry is never used and never runs code."""

from __future__ import annotations

import os
import pickle
import shutil

import pytest

from edgekit import manifest_cache
from edgekit.errors import ManifestError
from edgekit.manifest import Manifest, manifest_path_for
from edgekit.runtime import EdgeModel


@pytest.fixture()
def model(tmp_path, int8_path, monkeypatch):
    """The digits int8 model and its manifest in a folder of their own, with a cache of its own."""
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    dst = tmp_path / "m" / "digits-int8.tflite"
    dst.parent.mkdir()
    shutil.copy(int8_path, dst)
    shutil.copy(manifest_path_for(int8_path), manifest_path_for(dst))
    return dst


def entries(tmp_path):
    folder = tmp_path / "cache" / "manifests"
    return sorted(folder.iterdir()) if folder.exists() else []


def no_parse(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("parsed again")

    monkeypatch.setattr(Manifest, "from_bytes", refuse)


def test_a_manifest_parsed_once_comes_back_equal_without_a_parse(tmp_path, model, monkeypatch):
    first = manifest_cache.find(model)
    assert first == Manifest.load(model) and len(entries(tmp_path)) == 1
    no_parse(monkeypatch)
    again = manifest_cache.find(model)
    assert again == first and again is not first  # a fresh object: callers may cache on it
    assert again.ignored == first.ignored
    with EdgeModel.load(model) as m:  # the load reads it from the cache too
        assert m.manifest == first and m.load_error is None


def test_changed_bytes_are_parsed_again_and_an_invalid_manifest_still_raises(tmp_path, model):
    manifest_cache.find(model)
    p = manifest_path_for(model)
    p.write_bytes(p.read_bytes().replace(b'"classification"', b'"regression"', 1))
    assert manifest_cache.find(model).task == "regression" and len(entries(tmp_path)) == 2
    p.write_bytes(p.read_bytes().replace(b'"regression"', b'"detection"', 1))
    with pytest.raises(ManifestError, match="task"):
        manifest_cache.find(model)
    assert len(entries(tmp_path)) == 2  # nothing stored for bytes that do not parse


def test_other_parser_code_is_another_key(tmp_path, model, monkeypatch):
    manifest_cache.find(model)
    monkeypatch.setattr(manifest_cache, "_code", [b"another edgekit"])
    calls = []
    real = Manifest.from_bytes.__func__
    monkeypatch.setattr(Manifest, "from_bytes", classmethod(lambda cls, *a: calls.append(1) or real(cls, *a)))
    manifest_cache.find(model)
    assert calls == [1] and len(entries(tmp_path)) == 2


class _Runs:
    """Pickles as a call of os.system: what a hostile cache entry would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("entry", ["code", "garbage", "empty", "other_type"])
def test_a_damaged_or_hostile_entry_is_parsed_over_and_runs_nothing(tmp_path, model, entry):
    good = manifest_cache.find(model)
    (path,) = entries(tmp_path)
    marker = tmp_path / "ran"
    path.write_bytes({"code": pickle.dumps(_Runs(marker)), "garbage": b"\x80\x05garbage",
                      "empty": b"", "other_type": pickle.dumps({"task": "detection"})}[entry])
    assert manifest_cache.find(model) == good
    assert not marker.exists()
    assert pickle.loads(path.read_bytes()) == good  # written over with a good entry


def test_a_cache_that_cannot_be_written_only_costs_the_parse(tmp_path, model, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", "/proc/edgekit-cannot-write-here")
    assert manifest_cache.find(model) == Manifest.load(model)


def test_a_model_without_a_manifest_has_none(tmp_path, model):
    manifest_path_for(model).unlink()
    assert manifest_cache.find(model) is None


def test_the_cache_keeps_its_newest_entries_only(tmp_path, model, monkeypatch):
    monkeypatch.setattr(manifest_cache, "KEEP", 3)
    p = manifest_path_for(model)
    base = p.read_bytes()
    for i in range(5):  # five different manifests (their creation time differs)
        p.write_bytes(base.replace(b'"created": "', f'"created": "{i}'.encode(), 1))
        manifest_cache.find(model)
        newest = manifest_cache.find(model)  # read again: what the cache holds for these bytes, or a parse
    assert len(entries(tmp_path)) == 3 and newest.provenance.created.startswith("4")


def test_a_manifest_the_reader_would_refuse_is_never_stored(tmp_path, model, monkeypatch):
    """A section class from a module the unpickler does not admit: parsed on every load, never written (a write
    per load, with its fsync, would cost more than the parse)."""
    monkeypatch.setattr(manifest_cache, "_classes", {("nothing", "allowed"): object})
    assert manifest_cache.find(model) == Manifest.load(model)
    assert entries(tmp_path) == []
