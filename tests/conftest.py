"""Shared fixtures: models are built once per test session (building one takes seconds).

Tests marked `fashion_mnist` need the real Fashion-MNIST. Where no copy can be reached (the
Debian package `dataset-fashion-mnist`, `$FASHION_MNIST_DIR`, Keras's cache or download,
tensorflow-datasets) they skip with the loader's reason; with `KERAS_SD_INTERP_REQUIRE_DATA=1`
(set by `.ci/run`) they fail instead, so CI still proves them.
"""

import functools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

REQUIRE_DATA_VARIABLE = "KERAS_SD_INTERP_REQUIRE_DATA"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "fashion_mnist: needs the real Fashion-MNIST; skips where no copy can be reached "
        f"(fails instead under {REQUIRE_DATA_VARIABLE}=1, as .ci/run sets)",
    )


@functools.cache
def fashion_mnist_missing():
    """None when both splits of the real Fashion-MNIST load, else the loader's error text.
    Checked once per session; the loader is asked as the tests will ask it."""
    from keras_sd_interp.data import load_fashion_mnist

    try:
        for split in ("test", "train"):
            load_fashion_mnist(split)
    except FileNotFoundError as error:
        return str(error)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Skips (or, under KERAS_SD_INTERP_REQUIRE_DATA=1, fails) a `fashion_mnist` test before its
    fixtures run when the real data cannot be reached."""
    if item.get_closest_marker("fashion_mnist") is None:
        return
    missing = fashion_mnist_missing()
    if missing is None:
        return
    required = os.environ.get(REQUIRE_DATA_VARIABLE, "")
    if required not in ("", "0", "1"):
        pytest.fail(f"{REQUIRE_DATA_VARIABLE}={required!r}: valid values are 0 and 1",
                    pytrace=False)
    reason = f"needs the real Fashion-MNIST (Debian package dataset-fashion-mnist): {missing}"
    if required == "1":
        pytest.fail(f"{REQUIRE_DATA_VARIABLE}=1 and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tiny_unet():
    """Randomly initialised tiny U-Net at 32x64 (latent 8x16x4), context length 5."""
    import keras

    from keras_sd_interp.models import load_unet

    keras.utils.set_random_seed(0)
    return load_unet("tiny", 32, 64, 5, random_weights=True)


@pytest.fixture(scope="session")
def sd14_unet():
    """Randomly initialised SD v1.4-sized U-Net at 64x64 (latent 8x8x4), context length 3."""
    import keras

    from keras_sd_interp.models import load_unet

    keras.utils.set_random_seed(1)
    return load_unet("sd14", 64, 64, 3, random_weights=True)


def random_unet_inputs(unet, batch_size, seed=0):
    """[latent, timestep_embedding, context] drawn from N(0, 1) for `unet`'s input shapes."""
    rng = np.random.default_rng(seed)
    return [
        rng.normal(size=(batch_size,) + tuple(x.shape[1:])).astype("float32")
        for x in unet.inputs
    ]
