"""Many threads calling predict get the same answers as one thread."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from edgekit.errors import InputValidationError
from edgekit.runtime import EdgeModel


@pytest.mark.parametrize("pool_size, overlap", [(1, False), (3, False), (2, True)])
def test_threads_match_single_thread(int8_path, fp32_path, digits, pool_size, overlap):
    model = EdgeModel.load(int8_path, fallback=fp32_path, pool_size=pool_size, reference=fp32_path, shadow=0.25,
                           overlap=overlap)
    xs = digits.x_test[:240]
    # Mixed call shapes (single samples and batches of different sizes) force interpreter resizes
    # in between, the case where a shared interpreter would mix up answers.
    calls = [xs[i] if i % 3 else xs[i:i + 1 + i % 5] for i in range(len(xs))]
    want = [model.predict(c).output.copy() for c in calls]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda c: model.predict(c).output, calls * 3))
    for i, out in enumerate(got):
        np.testing.assert_array_equal(out, want[i % len(calls)])
    h = model.health(wait_for_shadow=True)
    assert h["calls"] == 4 * len(calls) and h["shadow"]["errors"] == 0
    model.close()


def test_overlapped_checks_give_the_same_verdicts(int8_path, digits, ood_sets):
    plain = EdgeModel.load(int8_path, overlap=False)
    overlapped = EdgeModel.load(int8_path, overlap=True)
    for x in (digits.x_test[:20], ood_sets["noise"][:5], digits.x_test[3]):
        a, b = plain.predict(x), overlapped.predict(x)
        np.testing.assert_array_equal(a.output, b.output)
        assert a.flagged.tolist() == b.flagged.tolist()
    with pytest.raises(InputValidationError, match="NaN"):
        overlapped.predict(np.full((8, 8, 1), np.nan, np.float32))
    overlapped.close()
