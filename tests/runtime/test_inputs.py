"""Input coercion: every accepted form gives the same float32 batch; every bad input is an edgekit error.

No model needed: the coercer is built from a sample shape and the digits preprocessing.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from edgekit.digits import PREPROCESSING
from edgekit.errors import EdgekitError, InputValidationError
from edgekit.runtime.inputs import InputCoercer


@pytest.fixture(scope="module")
def coerce():
    return InputCoercer((8, 8, 1), PREPROCESSING, max_batch=64, max_pixels=1_000_000)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


PIXELS = (np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)


def test_single_and_batch_arrays(coerce):
    x = np.random.default_rng(0).random((8, 8, 1)).astype(np.float32)
    b, batched = coerce(x)
    assert b.shape == (1, 8, 8, 1) and not batched and np.shares_memory(b, x)  # no copy on the fast path
    b, batched = coerce(np.stack([x, x]))
    assert b.shape == (2, 8, 8, 1) and batched
    b, _ = coerce(x.astype(np.float64))
    assert b.dtype == np.float32


def test_nested_lists_ints_and_uint8_pixels(coerce):
    b, batched = coerce(np.zeros((8, 8, 1)).tolist())
    assert b.shape == (1, 8, 8, 1) and b.dtype == np.float32 and not batched
    b, _ = coerce(np.full((8, 8, 1), 2, np.int64))
    assert float(b.max()) == 2.0  # other integers are model values
    b, _ = coerce(np.full((8, 8, 1), 255, np.uint8))
    assert float(b.max()) == pytest.approx(1.0)  # uint8 with an image model = raw pixels, preprocessed


def test_pil_path_and_bytes_agree(coerce, tmp_path):
    data = _png(PIXELS)
    path = tmp_path / "d.png"
    path.write_bytes(data)
    from_pil, _ = coerce(Image.fromarray(PIXELS))
    from_path, _ = coerce(path)
    from_str, _ = coerce(str(path))
    from_bytes, _ = coerce(data)
    from_array, _ = coerce(PIXELS[..., None])
    for other in (from_path, from_str, from_bytes, from_array):
        np.testing.assert_allclose(other, from_pil)
    batch, batched = coerce([path, data, Image.fromarray(PIXELS)])
    assert batch.shape == (3, 8, 8, 1) and batched


def test_rgb_and_large_images_are_converted_and_resized(coerce):
    rgb = Image.fromarray(np.zeros((100, 60, 3), np.uint8))
    b, _ = coerce(rgb)
    assert b.shape == (1, 8, 8, 1)


@pytest.mark.parametrize("bad, words", [
    (None, "None"),
    (np.zeros((3, 4), np.float32), "shape (3, 4); the model wants one sample (8, 8, 1) or a batch (N, 8, 8, 1)"),
    (np.zeros((0, 8, 8, 1), np.float32), "empty"),
    (np.zeros((0,), np.float32), "empty"),
    ([], "empty list"),
    (np.array([object()] * 64, dtype=object).reshape(8, 8, 1), "object"),
    (np.full((8, 8, 1), "a"), "string"),
    (np.zeros((8, 8, 1), bool), "bool"),
    (np.zeros((8, 8, 1), complex), "complex"),
    ([[1, 2], [3]], "ragged"),
    ({"x": 1}, "dict"),
    (np.zeros((65, 8, 8, 1), np.float32), "over the limit of 64"),
    ("no/such/file.png", "no such image file"),
    (b"not an image at all", "not a readable image"),
    (3.5, "shape ()"),
])
def test_bad_inputs_raise_one_line_errors(coerce, bad, words):
    with pytest.raises(InputValidationError) as info:
        coerce(bad)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_truncated_and_corrupt_images(coerce):
    data = _png(PIXELS)
    with pytest.raises(InputValidationError, match="corrupt or truncated|not a readable"):
        coerce(data[: len(data) // 2])
    bad = bytearray(data)
    bad[40:60] = b"\0" * 20  # inside the image data
    with pytest.raises(InputValidationError):
        coerce(bytes(bad))


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\0" + b"\0" * width
    idat = zlib.compress(row * 16, 9)  # only a few rows: the header is what matters
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_refused_before_decoding(coerce):
    bomb = _bomb_png(3_000, 3_000)  # 9 million pixels claimed in a few hundred bytes
    assert len(bomb) < 10_000
    with pytest.raises(InputValidationError, match="over the 1,000,000 limit"):
        coerce(bomb)
    with pytest.raises(InputValidationError, match="decompression bomb"):
        coerce(_bomb_png(20_000, 20_000))  # 400 million: Pillow's own guard fires first


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(dtype=st.sampled_from(["float32", "float64", "int8", "uint8", "int64", "float16", "bool"]),
                  shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=9),
                  elements=None))
def test_any_array_coerces_or_raises_input_error(coerce, arr):
    try:
        batch, _ = coerce(arr)
    except EdgekitError as err:
        assert isinstance(err, InputValidationError)
    else:
        assert batch.dtype == np.float32 and batch.shape[1:] == (8, 8, 1)
