"""Text-encoder sites: names and shapes (the names are fixed in `models/text_encoder.py`)."""

import numpy as np

from keras_sd_interp.lens.sites import hooks


def text_site_shapes(text_encoder):
    """Every site of a text encoder built by `models.text_encoder.build_text_encoder`:
    dict name -> shape without the batch axis, in forward order (one eager forward of a
    dummy prompt)."""
    length = text_encoder.inputs[0].shape[1]
    tokens = np.zeros((1, length), dtype="int32")
    positions = np.arange(length, dtype="int32")[None]
    with hooks(record="all") as cache:
        text_encoder({"tokens": tokens, "positions": positions})
    return {name: tuple(tensor.shape[1:]) for name, tensor in cache.items()}


def list_text_sites(text_encoder):
    """Lines "name  (shape)" for every text-encoder site, in forward order."""
    return [f"{name:44s} {shape}" for name, shape in text_site_shapes(text_encoder).items()]
