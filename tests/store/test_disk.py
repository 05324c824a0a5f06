"""A store on a read-only or full disk: a clear error (exit 2), and the active version still serves.

Real mounts (the tests run as root, where chmod does not stop writes): a read-only bind mount and
a 2 MB tmpfs.
"""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pytest

from edgekit.fsutil import sha256_file
from edgekit.store import serve
from edgekit.store import ModelStore


def _mount(*args):
    r = subprocess.run(["mount", *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"mount {' '.join(map(str, args))} failed (these tests need root): {r.stderr.strip()}")


@pytest.fixture()
def mounts():
    done = []

    def mount(*args, target):
        _mount(*args)
        done.append(target)

    yield mount
    for target in reversed(done):
        subprocess.run(["umount", str(target)], check=False)


def test_read_only_store(tmp_path, good, good_int8, digits, cli, mounts):
    store = tmp_path / "s"
    st = ModelStore(store, create=True)
    st.deploy(good)
    mounts("--bind", store, store, target=store)
    _mount("-o", "remount,bind,ro", store)
    code, _, err = cli("deploy", good_int8, "--store", store)
    assert code == 2 and "read-only" in err and "the active version is unchanged" in err
    code, _, err = cli("rollback", "--store", store)
    assert code == 2
    code, out, _ = cli("status", "--store", store, "--json")
    assert code == 0 and '"verified": true' in out  # readers need no write access, not even the lock
    with serve(store) as served:
        assert served.sha256 == sha256_file(good)
        assert served.predict(digits.x_test[:3]).outputs[0].shape == (3, 10)


def test_full_disk(tmp_path, good, good_int8, digits, cli, mounts):
    store = tmp_path / "small"
    store.mkdir()
    mounts("-t", "tmpfs", "-o", "size=2m", "tmpfs", store, target=store)
    st = ModelStore(store, create=True)
    first = st.deploy(good_int8)["sha256"]  # 81 KB: fits
    with open(store / "ballast", "wb") as fh:  # leave less room than the next model needs
        free = os.statvfs(store).f_bavail * os.statvfs(store).f_frsize
        fh.write(b"\0" * (free - 100_000))
    code, _, err = cli("deploy", good, "--store", store)  # 291 KB: does not fit
    assert code == 2 and "disk is full" in err and "the active version is unchanged" in err
    assert ModelStore(store).index()["active"]["sha256"] == first
    assert list(st.layout.tmp.iterdir()) == []  # the half-written copy was given back
    assert sorted(p.name for p in st.layout.objects.iterdir()) == [first]
    with serve(store) as served:
        assert served.sha256 == first
        assert served.predict(digits.x_test[:1]).outputs[0].shape == (1, 10)
        with open(store / "ballast2", "wb") as fh:  # now not a byte left
            with pytest.raises(OSError):
                fh.write(b"\0" * (1 << 21))
        noise = np.random.default_rng(0).uniform(0, 16, (1, 8, 8, 1)).astype(np.float32)
        pred = served.predict(noise)  # an OOD incident that cannot be written must not break the call
        assert pred.flagged.all() and served.incidents()[-1]["kind"] == "ood"
    (store / "ballast2").unlink()
    (store / "ballast").unlink()
    assert cli("deploy", good, "--store", store)[0] == 0  # room again: it works
    assert ModelStore(store).open().sha256 == sha256_file(good)
