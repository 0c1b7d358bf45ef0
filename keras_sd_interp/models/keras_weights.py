"""Keras weight files: atomic saving, the small float16 files shipped in `assets/`, and checked
loading. Shared by every small Keras model of the package (the DDPM, the judge), so that none of
them imports another's package for it.

Keras 3 insists that weight files end in `.weights.h5`; `io.atomic_path` keeps that suffix on
its temporary name.
"""

import os

import h5py
import numpy as np

from keras_sd_interp.io import atomic_path


def save_weights_atomic(model, path):
    """Saves `model`'s weights to `path` (must end in `.weights.h5`) through a temp file and a rename."""
    path = os.fspath(path)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"Keras 3 weight files must end in '.weights.h5', got {path!r}")
    with atomic_path(path) as tmp:  # the temp name keeps ".weights.h5", as Keras requires
        model.save_weights(tmp)


def save_float16_weights(model, path):
    """Saves `model`'s weights as a float16 `.weights.h5` (half the size; for shipped assets).

    The float32 file is copied into a fresh HDF5 file with every float32 array cast to float16
    (deleting datasets in place would not shrink the file). Keras casts them back on loading.
    """
    with atomic_path(path) as tmp:
        float32_path = tmp[: -len(".h5")] + ".float32.weights.h5"
        try:
            save_weights_atomic(model, float32_path)
            with h5py.File(float32_path, "r") as source, h5py.File(tmp, "w") as target:
                _copy_as_float16(source, target)
        finally:
            if os.path.exists(float32_path):
                os.remove(float32_path)


def _copy_as_float16(source, target):
    """Copies an HDF5 group recursively (attributes too), casting float32 datasets to float16."""
    target.attrs.update(source.attrs)
    for name, item in source.items():
        if isinstance(item, h5py.Group):
            _copy_as_float16(item, target.create_group(name))
        else:
            values = item[()]
            if np.asarray(values).dtype == np.float32:
                values = np.asarray(values, np.float16)
            target.create_dataset(name, data=values)
            target[name].attrs.update(item.attrs)


def load_weights_checked(model, path, what="model"):
    """Loads a `.weights.h5` file into `model`, with one clear error when it is missing or corrupt."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} weight file {path!r} does not exist")
    try:
        with h5py.File(path, "r"):
            pass
        model.load_weights(path)
    except Exception as error:
        raise ValueError(
            f"{what} weight file {path!r} is corrupt or does not match the model "
            f"({type(error).__name__}: {str(error)[:200]}); expected a Keras 3 `.weights.h5` "
            f"file saved from the same architecture"
        ) from error
    return model
