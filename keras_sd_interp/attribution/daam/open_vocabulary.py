"""Open-vocabulary maps (OVAM-style, Marcos-Manchon et al., 2024): the map of any word, from the
recorded queries of a DAAM trace, without a second generation.

The word, encoded alone by the text encoder, gives extra attn2 keys per layer (read through the
lens from one U-Net call: keys do not depend on the latent or the step); each step's softmax
runs over the prompt's keys plus these, and the word's columns are aggregated as DAAM does.
"""

import numpy as np
import tensorflow as tf

from keras_sd_interp.attribution.daam.arrays import aggregate, attention_probs
from keras_sd_interp.lens.tokens import prompt_words
from keras_sd_interp.lens import taps
from keras_sd_interp.lens.names import unet_inputs


def extra_keys(pipe, text, sites):
    """attn2 keys of `text` encoded alone: {site: (tokens, heads*d)} for each `...attn2.k`
    site, from one U-Net call on a zero latent."""
    unet = pipe.diffusion_model
    context = pipe.sampler.encode([text])  # the keys depend on the context only
    latent = tf.zeros((1,) + tuple(unet.inputs[0].shape[1:]))
    _, cache = taps.run_with_cache(unet, unet_inputs(unet, latent, 0, context), sites)
    return {site: np.asarray(cache[site])[0] for site in sites}


def open_vocabulary_map(tc, word, image=0, layers=None, heads=None, resolutions=None,
                        steps=None):
    """(H, W): the OVAM map of `word` for one image of a trace opened with open_vocabulary=True.

    A word already in the prompt uses its own keys (no extra ones), so its map equals
    `tc.heat_map(word)` without text rollout; rollout is not applied (the word is in no token
    of the prompt).
    """
    if not tc.open_vocabulary:
        raise ValueError("open_vocabulary_map needs a trace opened with open_vocabulary=True")
    image = tc.check_image(image)
    prompt = tc.prompts[image]
    layers = tc.select_layers(layers, resolutions)
    heads = tc.select_heads(heads)
    positions = tc.step_positions(steps)
    if word.lower() in prompt_words(prompt):
        columns, extra = tc.tokens.word_indices(prompt, word), None
    else:
        split = tc.tokens.split(word)
        if not split:
            raise ValueError(f"word {word!r} has no tokens")
        extra = extra_keys(tc.pipe, word, [tc.site(i, "attn2.k") for i in layers])
        columns = list(range(tc.tokens.length, tc.tokens.length + len(split)))
    maps = []
    for i in layers:
        q = tc.trace[tc.site(i, "attn2.q")][:, image]   # (steps, hw, heads*d)
        k = tc.trace[tc.site(i, "attn2.k")][:, image]   # (steps, T, heads*d)
        if positions is not None:
            q, k = q[positions], k[positions]
        if extra is not None:
            word_keys = extra[tc.site(i, "attn2.k")][1:1 + len(columns)]
            k = np.concatenate([k, np.broadcast_to(word_keys, (len(k),) + word_keys.shape)],
                               axis=1)
        probs = attention_probs(q, k, tc.num_heads).numpy()  # (steps, heads, hw, T+E)
        maps.append(probs.sum(0)[heads])
    out = aggregate(maps, tc.latent_hw, tc.image_hw, [columns])
    return out[:, :, 0].mean(axis=(0, 1))
