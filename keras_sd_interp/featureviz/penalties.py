"""Penalties on the clean latent z (B, h, w, 4), one value per item (B,), to MINIMIZE.

The `diffusion` preset weights them as the thesis: total variation 5.0, range 1.0, moments 0.5.
"""

import tensorflow as tf


def total_variation(z):
    """Mean absolute difference of vertical and horizontal neighbours (anisotropic L1):
    mean|z[i+1, j] - z[i, j]| + mean|z[i, j+1] - z[i, j]| per item."""
    dy = tf.reduce_mean(tf.abs(z[:, 1:] - z[:, :-1]), axis=[1, 2, 3])
    dx = tf.reduce_mean(tf.abs(z[:, :, 1:] - z[:, :, :-1]), axis=[1, 2, 3])
    return dy + dx


def out_of_range(z, bound=3.0):
    """Mean of relu(|z| - bound)^2: zero while every value is within +-bound (3 = three
    standard deviations of the N(0, 1) latents the decoder saw)."""
    return tf.reduce_mean(tf.square(tf.nn.relu(tf.abs(z) - bound)), axis=[1, 2, 3])


def moments(z, mean=0.0, std=1.0):
    """(mean(z) - mean)^2 + (std(z) - std)^2 per item."""
    m = tf.reduce_mean(z, axis=[1, 2, 3])
    s = tf.math.reduce_std(z, axis=[1, 2, 3])
    return tf.square(m - mean) + tf.square(s - std)
