"""`list_sites(...)`: the one list of every site, with its shape.

    lens.list_sites(pipe)            # text encoder, U-Net, sampler: what lens.trace reaches
    lens.list_sites(pipe.diffusion_model)    # the U-Net's inputs and sites: what taps address
    lens.list_sites(pipe.text_encoder)

Names are fixed where the models are built (`models/unet.py`, `models/text_encoder.py`,
`models/sampler.py`); shapes are read once per model and kept in its `model_cache`.
"""

import numpy as np

from keras_sd_interp.lens.cache import model_cache
from keras_sd_interp.lens.sites import hooks
from keras_sd_interp.lens.taps import tap_shapes
from keras_sd_interp.models.sampler import SAMPLER_SITES


def text_site_shapes(text_encoder):
    """Every site of a rebuilt text encoder: dict name -> shape without the batch axis, in
    forward order (one eager forward of a dummy prompt, once per encoder)."""
    stored = model_cache(text_encoder)
    if "text.shapes" not in stored:
        length = text_encoder.inputs[0].shape[1]
        tokens = np.zeros((1, length), dtype="int32")
        positions = np.arange(length, dtype="int32")[None]
        with hooks(record="all") as cache:
            text_encoder({"tokens": tokens, "positions": positions})
        stored["text.shapes"] = {name: tuple(t.shape[1:]) for name, t in cache.items()}
    return stored["text.shapes"]


def _is_pipeline(model):
    return hasattr(model, "diffusion_model") and hasattr(model, "text_encoder")


def _is_text_encoder(model):
    return hasattr(model, "num_text_layers")  # set by models.text_encoder.build_text_encoder


def list_sites(model):
    """Every site of `model`, in forward order: dict name -> shape without the batch axis.

    Args:
        model: a pipeline (its text encoder's sites, its U-Net's sites, then the sampler's
            `sampler.x_t` / `.eps` / `.x0`, shaped as the latent), a U-Net (its three inputs,
            which taps can address, then its sites) or a rebuilt text encoder.
    """
    if _is_pipeline(model):
        unet = model.diffusion_model
        inputs = {x.name for x in unet.inputs}
        latent = tuple(unet.inputs[0].shape[1:])
        found = dict(text_site_shapes(model.text_encoder))
        found.update((n, s) for n, s in tap_shapes(unet).items() if n not in inputs)
        found.update((name, latent) for name in SAMPLER_SITES)
        return found
    if _is_text_encoder(model):
        return dict(text_site_shapes(model))
    return dict(tap_shapes(model))
