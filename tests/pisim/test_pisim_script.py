"""scripts/pi-sim's cache key and parsing, without building anything (fast; no root needed)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import shlex
import shutil
import sys

import pytest

from pisim_device import REPO


@pytest.fixture(scope="module")
def pisim():
    loader = importlib.machinery.SourceFileLoader("pisim_script", str(REPO / "scripts" / "pi-sim"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("pisim_script", loader))
    sys.modules["pisim_script"] = module  # dataclasses look the module up while the class is made
    loader.exec_module(module)
    yield module
    del sys.modules["pisim_script"]


@pytest.fixture()
def checkout(tmp_path):
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / part, tmp_path / part)
    shutil.copytree(REPO / "edgekit", tmp_path / "edgekit")
    return tmp_path


def test_cache_key_ignores_edgekit_source_but_not_its_dependencies(pisim, checkout):
    fl = pisim.FLAVOURS["aarch64"]
    key, source = pisim.cache_key(fl, checkout), pisim.source_hash(checkout)
    (checkout / "edgekit" / "backends.py").write_text("# changed\n")
    assert pisim.cache_key(fl, checkout) == key  # the source is reinstalled on start, not rebuilt
    assert pisim.source_hash(checkout) != source
    text = (checkout / "pyproject.toml").read_text()
    (checkout / "pyproject.toml").write_text(text.replace('"psutil>=5.9",', '"psutil>=6",'))
    assert pisim.cache_key(fl, checkout) != key  # a dependency is part of the cached root
    assert pisim.cache_key(pisim.FLAVOURS["armv7l"], checkout) != pisim.cache_key(fl, checkout)


def test_options_line_is_what_edgekit_profile_takes(pisim):
    state = {"port": 40123, "key": "/c/run/aarch64/id ed25519", "known_hosts": "/c/run/aarch64/known_hosts"}
    opts = shlex.split(pisim.options_line(state))
    assert opts == ["--host", "root@127.0.0.1", "--ssh-port", "40123", "--ssh-key", "/c/run/aarch64/id ed25519",
                    "--ssh-option", "UserKnownHostsFile=/c/run/aarch64/known_hosts", "--remote-python",
                    "/venv/bin/python"]


def test_safe_rmtree_refuses_a_tree_with_mounts(pisim, tmp_path, monkeypatch):
    monkeypatch.setattr(pisim, "mounts_under", lambda path: [f"{path}/proc"])
    (tmp_path / "root").mkdir()
    with pytest.raises(pisim.PiSimError, match="still has mounts"):
        pisim.safe_rmtree(tmp_path / "root")
    assert (tmp_path / "root").exists()
