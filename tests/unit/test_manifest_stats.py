"""Calibration statistics and quantization helpers (the manifest itself: test_manifest.py)."""

import json

import numpy as np
import pytest

from edgekit.quant import clip_share, dequantize, quantize
from edgekit.calibration_stats import OODScorer, compute_input_stats, ood_scores, psi


def test_stats_describe_the_data():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(0, 1, (400, 6, 6, 1)), rng.normal(5, 2, (400, 6, 6, 1))], axis=-1)
    s = compute_input_stats(x.astype(np.float32))
    assert s.channels == 2 and s.samples == 400
    assert s.mean[0] == pytest.approx(0, abs=0.05) and s.mean[1] == pytest.approx(5, abs=0.1)
    assert s.std[1] == pytest.approx(2, rel=0.05)
    assert s.min[0] < s.quantiles["0.01"][0] < s.quantiles["0.99"][0] < s.max[0]
    from edgekit.manifest import _plain, _validate

    _validate(s, "stats", "")  # consistent by the manifest's own rules
    json.dumps(_plain(s), allow_nan=False)  # and the manifest can hold it


def test_ood_scores_separate_normal_from_odd():
    rng = np.random.default_rng(2)
    x = rng.normal(0.3, 0.1, (600, 8, 8, 1)).astype(np.float32)
    ref = compute_input_stats(x).ood
    normal = ood_scores(ref, rng.normal(0.3, 0.1, (300, 8, 8, 1)))
    odd = ood_scores(ref, rng.uniform(-3, 3, (50, 8, 8, 1)))
    blank = ood_scores(ref, np.zeros((1, 8, 8, 1)))
    assert np.mean(normal > 1) < 0.03
    assert np.all(odd > 1) and blank[0] > 1


def test_sketch_keeps_big_images_small():
    x = np.random.default_rng(0).random((20, 96, 96, 3), dtype=np.float32)
    ref = compute_input_stats(x).ood
    assert len(ref.sketch_mean) == 16 * 16 * 3


def test_psi_zero_for_same_distribution_and_large_for_shift():
    rng = np.random.default_rng(3)
    s = compute_input_stats(rng.normal(size=(2000, 1)).astype(np.float32))
    edges, share = s.bins.edges[0], s.bins.reference_share[0]
    assert psi(share, edges, rng.normal(size=5000)) < 0.02
    assert psi(share, edges, rng.normal(2, 1, size=5000)) > 0.5


def test_quantize_roundtrip_and_clip_share():
    x = np.linspace(0, 1, 11, dtype=np.float32)
    q = quantize(x, 1 / 255, -128, "int8")
    assert q.dtype == np.int8 and q.min() == -128 and q.max() == 127
    assert np.allclose(dequantize(q, 1 / 255, -128), x, atol=1 / 255)
    assert clip_share(x, 1 / 255, -128, "int8") == 0.0
    assert clip_share(np.array([2.0, 0.5, -1.0]), 1 / 255, -128, "int8") == pytest.approx(2 / 3)


def test_atomic_write_leaves_no_temp_and_uses_the_umask(tmp_path):
    import os

    from edgekit.fsutil import atomic_write_text

    atomic_write_text(tmp_path / "a.json", "{}")
    atomic_write_text(tmp_path / "a.json", "[]")
    assert (tmp_path / "a.json").read_text() == "[]"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "b.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o644


def test_one_sample_scores_match_the_batch_path_with_reach_and_colour():
    """The one-sample fast path (plain floats, the guard's own min and max) scores as the batch path does."""
    rng = np.random.default_rng(0)
    # smooth colour images in [-1, 1]: a random colour per image plus a gentle gradient
    base = rng.uniform(-1, 1, (260, 1, 1, 3)) * np.linspace(0.2, 1.0, 40)[None, :, None, None]
    x = np.clip(base + rng.normal(0, 0.05, (260, 40, 40, 3)), -1, 1).astype(np.float32)
    ref = compute_input_stats(x[:200]).ood
    assert ref.reach is not None and ref.colour is not None
    scorer = OODScorer(ref)
    held = x[200:]
    cases = np.concatenate([held, (held + 1) / 2, np.ascontiguousarray(held.transpose(0, 3, 1, 2)).reshape(held.shape)])
    batch = scorer(cases)
    one = [scorer(cases[i:i + 1], (float(cases[i].min()), float(cases[i].max())))[0] for i in range(len(cases))]
    np.testing.assert_allclose(one, batch, rtol=1e-4, atol=1e-5)
