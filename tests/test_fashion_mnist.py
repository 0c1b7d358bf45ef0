"""Fashion-MNIST loading: the IDX reader against files the test writes, and the real data."""

import gzip
import struct

import numpy as np
import pytest

from keras_sd_interp.data import CLASS_NAMES, load_fashion_mnist, read_idx


def write_idx(path, array, gz=False):
    """Writes `array` (uint8) as an IDX file, the way the Fashion-MNIST files are laid out."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(payload)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(7,), dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images, gz=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, gz=False)
    return tmp_path, images, labels


def test_read_idx_round_trips_gzipped_and_plain(tmp_path):
    array = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / "a.idx", array)
    write_idx(tmp_path / "a.idx.gz", array, gz=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), array)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "a.idx.gz")), array)


def test_loader_reads_a_directory_of_idx_files(idx_dir):
    folder, images, labels = idx_dir
    got_images, got_labels = load_fashion_mnist("test", data_dir=str(folder))
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels.astype(np.int64))
    assert got_images.dtype == np.uint8 and got_labels.dtype == np.int64


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    write_idx(tmp_path / "b.idx", np.zeros((4, 28, 28), np.uint8))
    data = (tmp_path / "b.idx").read_bytes()
    (tmp_path / "b.idx").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(tmp_path / "b.idx")
    (tmp_path / "c.idx").write_bytes(b"\x12\x34\x56\x78" + bytes(20))
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "c.idx")


def test_missing_files_and_bad_split_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks the Fashion-MNIST train IDX files"):
        load_fashion_mnist("train", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_fashion_mnist("train", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="split must be one of"):
        load_fashion_mnist("validation")


def test_search_order_error_names_every_place(monkeypatch, tmp_path):
    import keras_sd_interp.data.fashion_mnist as fm

    monkeypatch.setattr(fm, "DEBIAN_DIR", str(tmp_path / "debian"))
    monkeypatch.setattr(fm, "KERAS_CACHE_DIR", str(tmp_path / "keras"))
    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    with pytest.raises(FileNotFoundError) as error:
        fm.load_fashion_mnist("test", allow_download=False)
    message = str(error.value)
    assert "debian" in message and "keras" in message and "tensorflow-datasets" in message


def test_real_fashion_mnist_shapes_and_classes():
    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert np.bincount(test_labels).tolist() == [1000] * 10
    assert CLASS_NAMES[0] == "t-shirt" and CLASS_NAMES[9] == "boot" and len(CLASS_NAMES) == 10
    # Fashion-MNIST items sit on a black background: 81% of top-row test pixels are exactly 0.
    assert np.mean(test_images[:, 0, :] == 0) > 0.75
