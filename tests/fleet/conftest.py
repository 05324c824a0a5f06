"""A fleet on this machine for the ring-deploy tests (tests/fleet/local_fleet.py): five real stores, each served
by its own running app; four reached over the real sshd on 127.0.0.1 (tests/profile/sshd.py), one "local".

Rings: canary = pi-1 + gw (local), early = pi-2, all = pi-3 and pi-4 (pi-4 has no ring of its own).
"""

from __future__ import annotations

import os
import tempfile

import pytest

import local_fleet  # tests/fleet is on sys.path (prepend import mode)

os.environ.setdefault("EDGEKIT_CACHE_DIR", tempfile.mkdtemp(prefix="edgekit-test-cache-"))

RINGS = {"pi-1": "canary", "gw": "canary", "pi-2": "early", "pi-3": "all", "pi-4": None}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, ssh_server, digits, digits_models, keys):
    """Five stores with the signed fp32 digits model active, each served by its running app."""
    d = tmp_path_factory.mktemp("fleet")
    key, pub = keys["ours"]
    v1 = local_fleet.signed_copy(digits_models("fp32"), d / "models", "v1", key)
    fl = local_fleet.start(d, ssh_server, v1, key, pub, digits.x_test, RINGS)
    try:
        yield fl
    finally:
        fl.stop()
