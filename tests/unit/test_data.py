"""Calibration / eval data loading and its checks (no TensorFlow)."""

import numpy as np
import pytest
from PIL import Image

from edgekit.data import default_preprocessing, load_dataset
from edgekit.errors import DataError


def test_npy_and_npz(tmp_path):
    x = np.random.default_rng(0).random((5, 4, 4, 1), dtype=np.float32)
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", x=x, y=np.arange(5), labels=np.array(list("abcde")))
    a = load_dataset(tmp_path / "a.npy", input_shape=(4, 4, 1))
    b = load_dataset(tmp_path / "b.npz", input_shape=(4, 4, 1))
    assert a.x.shape == (5, 4, 4, 1) and a.y is None
    assert b.y.tolist() == [0, 1, 2, 3, 4] and b.labels == list("abcde")


def test_single_sample_gets_batch_axis():
    assert load_dataset(np.zeros((4, 4, 1)), input_shape=(4, 4, 1)).x.shape == (1, 4, 4, 1)


def test_dynamic_dims_accept_any_size():
    assert load_dataset(np.zeros((2, 7)), input_shape=(-1,)).x.shape == (2, 7)


@pytest.mark.parametrize("x,needle", [
    (np.full((3, 4, 4, 1), np.nan, np.float32), "NaN or Inf in 3 sample"),
    (np.pad(np.array([[[[np.inf]]]], np.float32), ((0, 0), (0, 3), (0, 3), (0, 0))), "NaN or Inf in 1 sample"),
    (np.zeros((3, 5, 5, 1)), r"samples have shape \(5, 5, 1\), the model input wants \(4, 4, 1\)"),
    (np.zeros((0, 4, 4, 1)), "empty"),
    (np.array([["a"]]), "must be numeric"),
])
def test_bad_arrays(x, needle):
    with pytest.raises(DataError, match=needle):
        load_dataset(x, input_shape=(4, 4, 1))


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "nope.npz")
    (tmp_path / "c.csv").write_text("1,2")
    with pytest.raises(DataError, match=".npy or .npz"):
        load_dataset(tmp_path / "c.csv")
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a numpy file"):
        load_dataset(tmp_path / "bad.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled"):
        load_dataset(tmp_path / "obj.npy")
    np.savez(tmp_path / "two.npz", a=np.zeros(2), b=np.zeros(2))
    with pytest.raises(DataError, match="named 'x'"):
        load_dataset(tmp_path / "two.npz")
    np.savez(tmp_path / "mismatch.npz", x=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(DataError, match="3 inputs but 2 labels"):
        load_dataset(tmp_path / "mismatch.npz", input_shape=(2,))


def test_image_folder_with_classes(tmp_path):
    for label, value in (("cat", 0), ("dog", 255)):
        (tmp_path / label).mkdir()
        for i in range(2):
            Image.new("RGB", (16, 12), (value, value, value)).save(tmp_path / label / f"{i}.png")
    ds = load_dataset(tmp_path, input_shape=(8, 8, 3))
    assert ds.x.shape == (4, 8, 8, 3) and ds.labels == ["cat", "dog"] and ds.y.tolist() == [0, 0, 1, 1]
    assert ds.x[0].max() == 0.0 and ds.x[-1].min() == pytest.approx(1.0)


def test_image_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no image files"):
        load_dataset(tmp_path, input_shape=(8, 8, 1))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError, match="broken.png: not a readable image"):
        load_dataset(tmp_path, input_shape=(8, 8, 1))
    with pytest.raises(DataError, match="image input"):
        load_dataset(tmp_path, input_shape=(10,))


def test_preprocessing_presets():
    assert default_preprocessing((10,)) is None
    assert default_preprocessing((8, 8, 1)).scale == pytest.approx(1 / 255)
    assert default_preprocessing((8, 8, 3), "-1-1").offset == -1.0
    with pytest.raises(DataError, match="unknown normalization"):
        default_preprocessing((8, 8, 3), "zscore")
