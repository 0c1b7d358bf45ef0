"""Datasets: real Fashion-MNIST from IDX files, Keras's cache or tensorflow-datasets."""

from keras_sd_interp.data.fashion_mnist import CLASS_NAMES, load_fashion_mnist, read_idx

__all__ = ["CLASS_NAMES", "load_fashion_mnist", "read_idx"]
