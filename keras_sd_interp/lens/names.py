"""The lens's vocabulary: site names from their parts, and the U-Net's inputs for a batch.

    transformer_site(3, "attn2.probs")    # "spatial_transformer_3.attn2.probs"
    res_block_site(3, "conv1")            # "res_block_3.conv1"
    text_layer_site(0, "attn.z")          # "text.layer_0.attn.z"
    ordinal_of("spatial_transformer_3.attn2")   # 3
    unet(unet_inputs(unet, latent, timesteps=500))

The names themselves are fixed where the layers are built (`models/unet.py`,
`models/text_encoder.py`); every tool builds them through these helpers.
"""

import tensorflow as tf

from keras_sd_interp.models.layers import timestep_embedding
from keras_sd_interp.models.text_encoder import text_layer_site, text_site_names  # noqa: F401
from keras_sd_interp.models.unet import (NUM_LAYERS, NUM_RES_BLOCKS,  # noqa: F401
                                         NUM_TRANSFORMERS, ordinal_of, res_block_site,
                                         transformer_site)


def unet_conditioning(unet, n, timesteps, context=None):
    """The U-Net's timestep embedding and context for a batch of n.

    Args:
        unet: an `SDUNet` (its input shapes give the embedding width and the context shape).
        n: batch size.
        timesteps: one training step (0..999) for the whole batch, or (n,) of them.
        context: (n or 1, L, D) text context (broadcast to n), or None for zeros of the U-Net's
            context shape (L may be 0: the paper's empty context).

    Returns:
        (timestep embedding (n, dim) float32, context (n, L, D) float32).
    """
    steps = tf.broadcast_to(tf.cast(timesteps, tf.float32), [n])
    t_emb = timestep_embedding(steps, unet.inputs[1].shape[-1])
    if context is None:
        return t_emb, tf.zeros((n,) + tuple(unet.inputs[2].shape[1:]))
    context = tf.cast(context, tf.float32)
    return t_emb, tf.broadcast_to(context, (n,) + tuple(context.shape[1:]))


def unet_inputs(unet, latent, timesteps, context=None):
    """The U-Net's input list for one batch: [latent (n, h, w, 4) float32, timestep embedding
    (n, dim), context (n, L, D)] (see `unet_conditioning` for timesteps and context)."""
    latent = tf.convert_to_tensor(latent, tf.float32)
    return [latent, *unet_conditioning(unet, latent.shape[0], timesteps, context)]
