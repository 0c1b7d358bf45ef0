"""Shared fixtures: models are built once per test session (building one takes seconds)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


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
