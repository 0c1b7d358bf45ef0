"""Transforms of the latent before the U-Net sees it (robustness), and of the gradient.

Latent transforms take (B, h, w, 4) and a random draw inside the compiled step, seed-free
(stateful, set by `tf.random.set_seed` before the trace) or from a `seed` tensor (2,) int32
(stateless: the same seed gives the same draw whenever the step runs, so one compiled step can
serve many batches and each batch's result depends only on its seeds):
`jitter` (a circular shift by up to d latent pixels each way), `affine` (rotation and scale
about the centre, bilinear, edges clamped), `noise_to_timestep` (the forward process
z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps, keras-cv's `_ALPHAS_CUMPROD`). Gradient
transforms: `blur_gradient` (3x3 Gaussian, sigma given; 0 is the identity) and
`precondition_gradient` (multiply the spectrum by 1/(|f| + 1), |f| in integer frequency units).
"""

import math

import numpy as np
import tensorflow as tf
from keras_cv.src.models.stable_diffusion.constants import _ALPHAS_CUMPROD

ALPHAS_CUMPROD = np.asarray(_ALPHAS_CUMPROD, np.float32)


def shift(x, dy, dx):
    """Circular shift of (B, h, w, C) by (dy, dx) rows and columns (scalars or tensors)."""
    return tf.roll(x, shift=[dy, dx], axis=[1, 2])


def uniform(shape, low, high, dtype=tf.float32, seed=None):
    """tf.random.uniform, or its stateless twin when `seed` (2,) is given."""
    if seed is None:
        return tf.random.uniform(shape, low, high, dtype=dtype)
    return tf.random.stateless_uniform(shape, seed, low, high, dtype=dtype)


def normal(shape, seed=None):
    """tf.random.normal, or its stateless twin when `seed` (2,) is given."""
    if seed is None:
        return tf.random.normal(shape)
    return tf.random.stateless_normal(shape, seed)


def jitter(x, d, seed=None):
    """A random circular shift by dy, dx uniform in -d..d (one draw for the batch)."""
    if d <= 0:
        return x
    offsets = uniform((2,), -d, d + 1, tf.int32, seed)
    return shift(x, offsets[0], offsets[1])


def affine(x, angle, scale):
    """Rotates (B, h, w, C) by `angle` radians and zooms by `scale` about the image centre.

    Output pixel p samples the input at c + R(-angle) (p - c) / scale, bilinearly, with
    coordinates clamped to the edges. angle 0, scale 1 is the identity."""
    _, h, w, _ = x.shape
    ys, xs = tf.meshgrid(tf.range(h, dtype=tf.float32), tf.range(w, dtype=tf.float32),
                         indexing="ij")
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    cos, sin = tf.cos(angle), tf.sin(angle)
    py, px = (ys - cy) / scale, (xs - cx) / scale
    sy = cy + cos * py - sin * px
    sx = cx + sin * py + cos * px
    sy = tf.clip_by_value(sy, 0.0, h - 1.0)
    sx = tf.clip_by_value(sx, 0.0, w - 1.0)
    y0, x0 = tf.floor(sy), tf.floor(sx)
    wy, wx = (sy - y0)[None, :, :, None], (sx - x0)[None, :, :, None]
    y0i, x0i = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    y1i, x1i = tf.minimum(y0i + 1, h - 1), tf.minimum(x0i + 1, w - 1)

    moved = tf.transpose(x, (1, 2, 0, 3))                                # (h, w, B, C)

    def at(yi, xi):
        return tf.transpose(tf.gather_nd(moved, tf.stack([yi, xi], axis=-1)), (2, 0, 1, 3))

    top = at(y0i, x0i) * (1 - wx) + at(y0i, x1i) * wx
    bottom = at(y1i, x0i) * (1 - wx) + at(y1i, x1i) * wx
    return top * (1 - wy) + bottom * wy


def random_affine(x, max_degrees, max_scale, seeds=(None, None)):
    """`affine` with angle uniform in +-max_degrees and scale log-uniform in
    [1/max_scale, max_scale] (one draw for the batch); seeds: the two draws' (stateless)."""
    if max_degrees <= 0 and max_scale <= 1:
        return x
    angle = uniform((), -max_degrees, max_degrees, seed=seeds[0]) * (math.pi / 180.0)
    log_s = math.log(max(max_scale, 1.0))
    scale = tf.exp(uniform((), -log_s, log_s, seed=seeds[1]))
    return affine(x, angle, scale)


def noise_to_timestep(z, alphas, eps):
    """z_t = sqrt(abar) z + sqrt(1 - abar) eps with alphas (B,) = abar_t per item."""
    a = tf.reshape(alphas, (-1, 1, 1, 1))
    return tf.sqrt(a) * z + tf.sqrt(1.0 - a) * eps


def gaussian_kernel3(sigma):
    """(3, 3) normalised Gaussian weights for sigma > 0 (a tensor)."""
    r = tf.constant([-1.0, 0.0, 1.0])
    g = tf.exp(-r * r / (2.0 * sigma * sigma))
    g = g / tf.reduce_sum(g)
    return g[:, None] * g[None, :]


def blur_gradient(grad, sigma):
    """Depthwise 3x3 Gaussian blur of (B, h, w, C) with 'SAME' reflect-free zero padding;
    sigma <= 1e-3 returns `grad` unchanged."""
    channels = grad.shape[-1]

    def blurred():
        k = tf.tile(gaussian_kernel3(sigma)[:, :, None, None], [1, 1, channels, 1])
        return tf.nn.depthwise_conv2d(grad, k, [1, 1, 1, 1], "SAME")

    return tf.cond(sigma > 1e-3, blurred, lambda: grad)


def frequency_weights(h, w):
    """1 / (|f| + 1) over the rfft2 grid (h, w//2+1), |f| = sqrt(ky^2 + kx^2) in integer
    frequency units (ky in -h/2..h/2, kx in 0..w/2)."""
    ky = np.fft.fftfreq(h)[:, None] * h
    kx = np.fft.rfftfreq(w)[None, :] * w
    return (1.0 / (np.sqrt(ky * ky + kx * kx) + 1.0)).astype(np.float32)


def precondition_gradient(grad):
    """Each channel's spectrum times 1/(|f| + 1): (B, h, w, C) -> same."""
    _, h, w, _ = grad.shape
    spec = tf.signal.rfft2d(tf.transpose(grad, (0, 3, 1, 2)))
    spec = spec * tf.cast(frequency_weights(h, w), tf.complex64)
    return tf.transpose(tf.signal.irfft2d(spec, fft_length=[h, w]), (0, 2, 3, 1))
