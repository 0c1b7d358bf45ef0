"""Real Fashion-MNIST: 60,000 training and 10,000 test images of 28x28 clothing items, 10 classes.

`load_fashion_mnist` looks in three places, in this order, and uses the first that has the data:

1. a directory of the four IDX files (`data_dir`, else `$FASHION_MNIST_DIR`, else
   `/usr/share/datasets/fashion-mnist`, where the Debian package `dataset-fashion-mnist` puts them),
   gzipped or not;
2. Keras's download cache (`~/.keras/datasets/fashion-mnist`, filled by
   `keras.datasets.fashion_mnist.load_data()`), read without going online;
3. tensorflow-datasets (`fashion_mnist`), which may download. tfds is imported only here.
"""

import gzip
import os

import numpy as np

CLASS_NAMES = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "boot",
)

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
KERAS_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".keras", "datasets", "fashion-mnist")

SPLIT_PREFIXES = {"train": "train", "test": "t10k"}

# IDX type codes (third byte of the magic number) -> NumPy dtype, big-endian as the format says.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Reads one IDX file (gzipped when the name ends in `.gz`) into a NumPy array.

    Returns an array whose shape is the one the header declares, e.g. (N, 28, 28) uint8 for
    images and (N,) uint8 for labels. Raises ValueError on a bad magic number or a wrong length.
    """
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"Cannot read IDX file {path}: {error}") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: its magic number is {data[:4].hex() or 'missing'}; "
            f"valid ones are 0000XXNN with XX in {sorted(hex(k) for k in _IDX_DTYPES)}"
        )
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header_size = 4 + 4 * ndim
    shape = tuple(int(n) for n in np.frombuffer(data[4:header_size], dtype=">u4"))
    expected = header_size + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: header says shape {shape} ({expected} bytes), "
            f"file has {len(data)} bytes"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _find_idx(folder, name):
    """Returns the path of `name` or `name.gz` in `folder`, or None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(folder, candidate)
        if os.path.isfile(path):
            return path
    return None


def _load_from_idx_dir(folder, split):
    """Returns (images, labels) from a directory of IDX files, or None if they are not there."""
    prefix = SPLIT_PREFIXES[split]
    images_path = _find_idx(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        return None
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"IDX files in {folder} do not match: images {images.shape} and labels {labels.shape}; "
            "expected images (N, H, W) and labels (N,)"
        )
    return images.astype(np.uint8), labels.astype(np.int64)


def _load_from_tfds(split):
    """Returns (images, labels) from tensorflow-datasets (may download)."""
    import tensorflow_datasets as tfds  # Heavy and version-sensitive: imported only when used.

    images, labels = tfds.as_numpy(
        tfds.load("fashion_mnist", split=split, batch_size=-1, as_supervised=True)
    )
    return images[..., 0].astype(np.uint8), labels.astype(np.int64)


def load_fashion_mnist(split="train", data_dir=None, allow_download=True):
    """Loads one split of the real Fashion-MNIST.

    Args:
      split: "train" (60,000 images) or "test" (10,000 images).
      data_dir: a directory with the four IDX files. When given, only it is looked at.
      allow_download: whether tensorflow-datasets may be tried as the last resort.

    Returns:
      images: uint8 array (N, 28, 28), 0 = black background.
      labels: int64 array (N,), values 0..9 indexing `CLASS_NAMES`.
    """
    if split not in SPLIT_PREFIXES:
        raise ValueError(f"split must be one of {sorted(SPLIT_PREFIXES)}, got {split!r}")
    if data_dir is not None:
        if not os.path.isdir(data_dir):
            raise FileNotFoundError(f"Fashion-MNIST data_dir {data_dir!r} is not a directory")
        found = _load_from_idx_dir(data_dir, split)
        if found is None:
            raise FileNotFoundError(
                f"{data_dir!r} lacks the Fashion-MNIST {split} IDX files "
                f"({SPLIT_PREFIXES[split]}-images-idx3-ubyte[.gz] and "
                f"{SPLIT_PREFIXES[split]}-labels-idx1-ubyte[.gz])"
            )
        return found

    folders = [os.environ.get("FASHION_MNIST_DIR"), DEBIAN_DIR, KERAS_CACHE_DIR]
    folders = [folder for folder in folders if folder]
    for folder in folders:
        if os.path.isdir(folder):
            found = _load_from_idx_dir(folder, split)
            if found is not None:
                return found
    tfds_error = "not tried (allow_download=False)"
    if allow_download:
        try:
            return _load_from_tfds(split)
        except Exception as error:  # Offline, not installed, or a broken protobuf pairing.
            tfds_error = f"{type(error).__name__}: {error}"[:300]
    raise FileNotFoundError(
        "Fashion-MNIST not found. Looked in the IDX directories "
        + ", ".join(repr(folder) for folder in folders)
        + f" and tensorflow-datasets ({tfds_error}). Install the Debian package "
        "`dataset-fashion-mnist`, pass data_dir=<folder with the IDX files>, or go online."
    )


def to_model_range(images):
    """Maps uint8 images (N, 28, 28) to float32 (N, 28, 28, 1) in [-1, 1]."""
    return (np.asarray(images, np.float32)[..., None] / 127.5) - 1.0

