"""Top-k sparse autoencoders on U-Net activations (SAeUron's recipe) and feature tools.

    data = collect(pipe, prompts)                        # activations (S, N, h, w, C) at
                                                         # spatial_transformer_8 = SD's
                                                         # up_blocks.1.attentions.1
    sae = SparseAutoencoder(d_in=96, expansion=16, k=32)
    training.sae.train_sae(sae, as_tokens(data["activations"]))
    features.top_examples(sae, data, latent)             # where a latent fires most
    lens.trace(pipe, edits={site: features.feature_edit(sae, latent, scale=0.0)})  # ablate

`model` (encode / decode / top-k / losses), `collect` (activations while generating),
`features` (top examples, maps, edits, per-timestep scores), `store` (`load_sae`: our .npz or a
SAeUron checkpoint folder, `saeuron`). Activations streamed to disk for training:
`training.sae_shards`.
"""

from keras_sd_interp.sae.collect import DEFAULT_SITE, DIFFUSERS_NAME, as_tokens, collect
from keras_sd_interp.sae.model import (
    SparseAutoencoder, batch_topk, fvu, geometric_median, topk,
)
from keras_sd_interp.sae.store import load_sae

__all__ = ["load_sae", "DEFAULT_SITE", "DIFFUSERS_NAME", "SparseAutoencoder", "as_tokens", "batch_topk",
           "collect", "fvu", "geometric_median", "topk"]
