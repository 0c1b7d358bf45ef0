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


@pytest.fixture
def no_local_copy(monkeypatch, tmp_path):
    """A machine without the Debian package, $FASHION_MNIST_DIR, Keras's cache or a tfds copy."""
    import keras.src.backend.config as keras_config

    import keras_sd_interp.data.fashion_mnist as fm

    monkeypatch.delenv("FASHION_MNIST_DIR", raising=False)
    monkeypatch.setenv("FASHION_MNIST_DEBIAN_DIR", str(tmp_path / "debian"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras"))  # read at its import
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    return fm


def test_search_order_error_names_every_place(no_local_copy):
    with pytest.raises(FileNotFoundError) as error:
        no_local_copy.load_fashion_mnist("test", allow_download=False)
    message = str(error.value)
    for place in ("$FASHION_MNIST_DIR (not set)", "debian", "keras", "tensorflow-datasets",
                  "dataset-fashion-mnist"):
        assert place in message, (place, message)
    # tfds is imported and asked (not broken by a missing module): its own "no data" answer.
    assert "No module named" not in message and "no download:" in message


def test_tfds_does_not_download_when_its_host_does_not_resolve():
    import keras_sd_interp.data.fashion_mnist as fm

    assert not fm._host_resolves("http://no-such-host.invalid/t10k-images-idx3-ubyte.gz")


def write_keras_cache(folder, sizes=(("train", 5), ("t10k", 3))):
    """The four .gz files `keras.datasets.fashion_mnist.load_data()` caches; returns the arrays."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True)
    arrays = {}
    for prefix, n in sizes:
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=(n,), dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images, gz=True)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels, gz=True)
        arrays[prefix] = images, labels
    return arrays


def test_keras_load_data_is_a_fallback_reading_its_cache(no_local_copy, tmp_path):
    """Keras's own `fashion_mnist.load_data()` reads a filled cache in $KERAS_HOME offline."""
    arrays = write_keras_cache(tmp_path / "keras" / "datasets" / "fashion-mnist")
    for split, prefix in (("test", "t10k"), ("train", "train")):
        images, labels = no_local_copy.load_fashion_mnist(split, allow_download=False)
        np.testing.assert_array_equal(images, arrays[prefix][0])
        np.testing.assert_array_equal(labels, arrays[prefix][1].astype(np.int64))


@pytest.mark.fashion_mnist
def test_real_fashion_mnist_shapes_and_classes():
    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    assert train_images.shape == (60000, 28, 28) and test_images.shape == (10000, 28, 28)
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert np.bincount(test_labels).tolist() == [1000] * 10
    assert CLASS_NAMES[0] == "t-shirt" and CLASS_NAMES[9] == "boot" and len(CLASS_NAMES) == 10
    # Fashion-MNIST items sit on a black background: 81% of top-row test pixels are exactly 0.
    assert np.mean(test_images[:, 0, :] == 0) > 0.75
