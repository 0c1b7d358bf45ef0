"""The course code's latent descent (`generateMaxActivations.py`): the one copy of its numbers.

    latent = start_latents((64, 64, 4), batch_size=1, seed=0)    # float64, uniform in [128, 148)
    for i in range(STEPS):                                        # t = i at step i
        g = gradient of mean(out[..., f]) with respect to the latent
        latent = latent - rms_normalised_step(g, LEARNING_RATE)  # I = I - 5 * g / (rms(g) + 1e-5)
    image = decode_to_uint8(decoder, latent, "paper")             # (img*127.5 + 127.5).astype(uint8)

The start is far outside anything the decoder saw in training, the timestep follows the step
index, and the uint8 cast wraps values outside [-1, 1] (no clipping): bugs kept on purpose, so
that paper mode gives the paper's figures. The batched, compiled loop is
`featureviz.paper.descent`; the lucent-style loop's `paper` preset reads its numbers from here.
"""

import numpy as np
import tensorflow as tf

STEPS = 300
LEARNING_RATE = 5.0
RMS_EPSILON = 1e-5


def start_latents(latent_shape, batch_size, seed):
    """`np.random.random((1,) + latent_shape) * 20 + 128` from `default_rng(seed)`, repeated:
    float64 (batch_size,) + latent_shape. Every item starts from the same draw, so a filter
    optimized in a batch starts exactly where it would alone."""
    one = np.random.default_rng(seed).random((1,) + tuple(latent_shape)) * 20 + 128
    return np.repeat(one, batch_size, axis=0)


def timesteps(steps):
    """The timestep of every step, t = i: (steps,) float32."""
    return np.arange(steps, dtype=np.float32)


def rms_normalised_step(grad, learning_rate):
    """`learning_rate * grad / (rms + 1e-5)`, rms over each item's own axes: (B, ...) -> same.
    What the course subtracts from the latent at each step (per item, so items stay
    independent in a batch)."""
    axes = list(range(1, len(grad.shape)))
    rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=axes, keepdims=True))
    return learning_rate * grad / (rms + RMS_EPSILON)
