"""Real Fashion-MNIST: 60,000 training and 10,000 test images of 28x28 clothing items, 10 classes.

`load_fashion_mnist` looks in these places, in this order, and uses the first that has the data:

1. the IDX folder `$FASHION_MNIST_DIR`, when set (the four IDX files, gzipped or not);
2. the Debian package `dataset-fashion-mnist`'s folder, `/usr/share/datasets/fashion-mnist`
   (`$FASHION_MNIST_DEBIAN_DIR` moves it: point it at an empty folder to act as a machine without
   the package);
3. Keras's `keras.datasets.fashion_mnist.load_data()`: its cache,
   `$KERAS_HOME/datasets/fashion-mnist` (default `~/.keras/...`), offline, else a download;
4. tensorflow-datasets (`fashion_mnist`): a copy prepared in `$TFDS_DATA_DIR` (default
   `~/tensorflow_datasets`), else a download when its host resolves (an offline download retries
   for minutes). tfds is imported only here.

With `allow_download=False` only copies already on the machine are read. When none is found,
the FileNotFoundError lists every place tried and why each failed.
"""

import gzip
import os
import socket
import urllib.parse

import numpy as np

CLASS_NAMES = (
    "t-shirt", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "boot",
)

DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
DEBIAN_DIR_VARIABLE = "FASHION_MNIST_DEBIAN_DIR"
DIR_VARIABLE = "FASHION_MNIST_DIR"
KERAS_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
               "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")

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


class NotThere(Exception):
    """One place does not have the data; the message says why."""


def _from_idx_folder(folder, split):
    """(images, labels) from `folder`, or NotThere saying what is missing."""
    if not os.path.isdir(folder):
        raise NotThere("no such folder")
    found = _load_from_idx_dir(folder, split)
    if found is None:
        raise NotThere(f"no {SPLIT_PREFIXES[split]}-images/labels IDX files")
    return found


def _from_env_folder(split):
    """(images, labels) from `$FASHION_MNIST_DIR`, or NotThere when it is unset or lacks them."""
    folder = os.environ.get(DIR_VARIABLE)
    if not folder:
        raise NotThere("not set")
    return _from_idx_folder(folder, split)


def debian_dir():
    """Where the Debian package's IDX files are looked for: `$FASHION_MNIST_DEBIAN_DIR`, else
    `DEBIAN_DIR`."""
    return os.environ.get(DEBIAN_DIR_VARIABLE) or DEBIAN_DIR


def keras_cache_dir():
    """The folder `keras.datasets.fashion_mnist.load_data()` caches into, by Keras's rule:
    `$KERAS_HOME` (Keras reads it when imported), else `~/.keras` (`/tmp/.keras` when the home
    folder is not writable), then `datasets/fashion-mnist`."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return os.path.join(os.path.expanduser(home), "datasets", "fashion-mnist")


def _error_text(error, limit=300):
    """`error` as "Type: message", cut to `limit` characters."""
    return f"{type(error).__name__}: {error}"[:limit]


def _from_keras(split, allow_download):
    """(images, labels) from Keras's `fashion_mnist.load_data()`: its cache, else a download."""
    try:
        import keras

        cache = keras_cache_dir()
    except Exception as error:  # Keras missing or broken.
        raise NotThere(_error_text(error)) from error
    missing = [name for name in KERAS_FILES if not os.path.isfile(os.path.join(cache, name))]
    if missing and not allow_download:
        raise NotThere(f"cache {cache!r} lacks {', '.join(missing)}; download not allowed")
    try:
        (train_x, train_y), (test_x, test_y) = keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # Offline, or a truncated cache file.
        raise NotThere(f"cache {cache!r}: {_error_text(error)}") from error
    images, labels = (train_x, train_y) if split == "train" else (test_x, test_y)
    return images.astype(np.uint8), labels.astype(np.int64)


def _host_resolves(url):
    """Whether the host of `url` has an address (False offline: no download is tried then)."""
    try:
        socket.getaddrinfo(urllib.parse.urlsplit(url).hostname, None)
    except (OSError, UnicodeError):
        return False
    return True


def _from_tfds(split, allow_download):
    """(images, labels) from tensorflow-datasets: a prepared copy, else a download."""
    try:
        import tensorflow_datasets as tfds

        # The download's checksum list: reading it imports what a download needs (an
        # `importlib_resources` missing from the install fails here, not minutes later).
        urls = sorted(tfds.builder_cls("fashion_mnist").url_infos or ())
    except Exception as error:  # Not installed, or a broken dependency.
        raise NotThere(_error_text(error)) from error
    url = urls[0] if urls else "its download host"
    download = allow_download and bool(urls) and _host_resolves(url)
    try:
        images, labels = tfds.as_numpy(tfds.load(
            "fashion_mnist", split=split, batch_size=-1, as_supervised=True, download=download))
    except Exception as error:
        offline = "" if download else f" (no download: {url} unreachable or not allowed)"
        raise NotThere(_error_text(error) + offline) from error
    return images[..., 0].astype(np.uint8), labels.astype(np.int64)


def _places(split, allow_download):
    """(description, loader) for each place, in search order."""
    return [
        (f"${DIR_VARIABLE}", lambda: _from_env_folder(split)),
        (f"the Debian package's folder {debian_dir()!r}",
         lambda: _from_idx_folder(debian_dir(), split)),
        ("Keras's fashion_mnist.load_data()", lambda: _from_keras(split, allow_download)),
        ("tensorflow-datasets", lambda: _from_tfds(split, allow_download)),
    ]


def _not_found_message(tried):
    """The error for no copy found: each place tried with why, then how to get the data."""
    return (
        "Fashion-MNIST not found. Tried: " + "; ".join(tried) + ". "
        f"Install the Debian package `{DEBIAN_PACKAGE}` (apt-get install {DEBIAN_PACKAGE}), "
        f"set ${DIR_VARIABLE} or pass data_dir=<folder with the four IDX files>, "
        "or go online for Keras's download."
    )


def load_fashion_mnist(split="train", data_dir=None, allow_download=True):
    """Loads one split of the real Fashion-MNIST (where it looks: the module docstring).

    Args:
      split: "train" (60,000 images) or "test" (10,000 images).
      data_dir: a directory with the four IDX files. When given, only it is looked at.
      allow_download: whether Keras and tensorflow-datasets may download a copy.

    Returns:
      images: uint8 array (N, 28, 28), 0 = black background.
      labels: int64 array (N,), values 0..9 indexing `CLASS_NAMES`.
    """
    if split not in SPLIT_PREFIXES:
        raise ValueError(f"split must be one of {sorted(SPLIT_PREFIXES)}, got {split!r}")
    if data_dir is not None:
        return _from_data_dir(data_dir, split)
    tried = []
    for place, load in _places(split, allow_download):
        try:
            return load()
        except NotThere as reason:
            tried.append(f"{place} ({reason})")
    raise FileNotFoundError(_not_found_message(tried))


def _from_data_dir(data_dir, split):
    """(images, labels) from the folder the caller named; a clear error when it lacks them."""
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


def to_model_range(images):
    """Maps uint8 images (N, 28, 28) to float32 (N, 28, 28, 1) in [-1, 1]."""
    return (np.asarray(images, np.float32)[..., None] / 127.5) - 1.0

