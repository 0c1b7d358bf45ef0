"""Does a visualization show what its feature means? The pieces of the measure (arrays only).

For each class, the latent whose strongest activations (top examples) fall most often on items
of that class; random firing latents as the control. A visualization (or a top example) is
scored by the judge on the 28x28 cell where the feature peaks in it (left or right half of the
image: the site's columns < w/2 are the left cell). The judge itself is called by the caller.
"""

import numpy as np
import tensorflow as tf

from keras_sd_interp.lens import taps
from keras_sd_interp.lens.names import unet_inputs


def most_selective(selectivity, num_classes=10):
    """For each class c, the latent with class_ == c and the highest share (ties: highest
    peak); -1 where no latent prefers c. Returns (num_classes,) int."""
    chosen = []
    for c in range(num_classes):
        ok = np.flatnonzero((selectivity["class_"] == c) & (selectivity["peak"] > 0))
        if len(ok) == 0:
            chosen.append(-1)
            continue
        key = selectivity["share"][ok] * 1e6 + selectivity["peak"][ok]
        chosen.append(int(ok[np.argmax(key)]))
    return np.array(chosen)


def random_firing(selectivity, num, seed=0, exclude=()):
    """`num` latents drawn (seeded) among those that fire on the data, not in `exclude`."""
    firing = np.setdiff1d(np.flatnonzero(selectivity["peak"] > 0), np.asarray(exclude))
    return np.random.default_rng(seed).choice(firing, size=min(num, len(firing)), replace=False)


def peak_sides(unet, sae, site, latents, features, timesteps, context):
    """Which half each latent (B, h, w, 4) activates feature `features[i]` most in, run clean at
    `timesteps` (B,) with `context` (B, tokens, width): (B,) 0 = left, 1 = right."""
    tap = taps.tap_model(unet, [site])
    acts = tap(unet_inputs(unet, latents, timesteps, context))[site].numpy()
    b, h, w, c = acts.shape
    pre = sae.pre_activations(tf.constant(acts.reshape(-1, c))).numpy().reshape(b, h, w, -1)
    maps = pre[np.arange(b), :, :, np.asarray(features)]                 # (B, h, w)
    return (maps.max(axis=1).argmax(axis=1) >= w // 2).astype(int)


def cells(images, sides):
    """The 28x28 item cell on `sides` (N,) (0 left, 1 right) of images (N, 32, 64[, 1])."""
    from keras_sd_interp.data.compositions import halves

    left, right = halves(images)
    return np.where(np.asarray(sides)[:, None, None] == 0, left, right)
