"""The Dense kernels that closed-form edits read and write, by name.

Names: "text.layer_{i}.attn.out_proj" (the text encoder's self-attention output projection)
and "spatial_transformer_{i}.attn2.to_k" / ".to_v" (cross-attention key / value projections).

    kernel, bias = dense_kernel(pipe, "text.layer_0.attn.out_proj")   # NumPy (in, out), (out,)
    set_dense_kernel(pipe, "text.layer_0.attn.out_proj", new_kernel)

Only this module reaches into the layers for their weights; editing asks it by name.
"""

import numpy as np

from keras_sd_interp.models.text_encoder import text_layer_site
from keras_sd_interp.models.unet import transformer_site

EDITABLE_FORMS = (text_layer_site("<i>", "attn.out_proj"), transformer_site("<i>", "attn2.to_k"),
                  transformer_site("<i>", "attn2.to_v"))


def _dense_layer(pipe, name):
    """The Keras Dense layer called `name` in `pipe` (see the module doc)."""
    site, _, attribute = name.rpartition(".")
    if site.startswith("text.layer_") and site.endswith(".attn") and attribute == "out_proj":
        for layer in pipe.text_encoder.layers:
            if getattr(layer, "site_name", None) == site[:-len(".attn")]:
                return layer.clip_attn.out_proj
    elif site.endswith(".attn2") and attribute in ("to_k", "to_v"):
        for layer in pipe.diffusion_model.layers:
            if getattr(layer, "site_name", None) == site[:-len(".attn2")]:
                return getattr(layer.transformer_block.attn2, attribute)
    raise ValueError(f"unknown editable layer {name!r}: use one of {list(EDITABLE_FORMS)}")


def dense_kernel(pipe, name):
    """(kernel (in, out), bias (out,) or None) of the Dense layer `name`, as NumPy copies."""
    layer = _dense_layer(pipe, name)
    bias = None if layer.bias is None else np.array(layer.bias.numpy(), copy=True)
    return np.array(layer.kernel.numpy(), copy=True), bias


def set_dense_kernel(pipe, name, kernel):
    """Writes `kernel` (in, out) into the Dense layer `name`.

    Raises:
        ValueError: the shape differs from the layer's (an edit made for another model size).
    """
    variable = _dense_layer(pipe, name).kernel
    if tuple(variable.shape) != np.shape(kernel):
        raise ValueError(f"kernel for {name} is {np.shape(kernel)}; the model's is "
                         f"{tuple(variable.shape)} (an edit made for another model size?)")
    variable.assign(kernel)
