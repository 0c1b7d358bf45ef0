"""The forward (noising) process of a DDPM: constants derived from a beta schedule, and q(x_t | x_0)."""

import numpy as np
import tensorflow as tf

from keras_sd_interp.ddpm.schedules import check_betas


def schedule_constants(betas):
    """Everything the forward and reverse processes need from betas (T,), as float64 arrays (T,).

    Returns a dict with betas, alphas = 1 - betas, alphas_cumprod (alpha-bar_t),
    alphas_cumprod_prev (alpha-bar_{t-1}, with alpha-bar_{-1} = 1) and posterior_variance
    beta_t (1 - alpha-bar_{t-1}) / (1 - alpha-bar_t), the variance of q(x_{t-1} | x_t, x_0).
    """
    betas = check_betas(betas)
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas)
    alphas_cumprod_prev = np.concatenate([[1.0], alphas_cumprod[:-1]])
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    return {
        "betas": betas,
        "alphas": alphas,
        "alphas_cumprod": alphas_cumprod,
        "alphas_cumprod_prev": alphas_cumprod_prev,
        "posterior_variance": posterior_variance,
    }


def q_sample(x0, timesteps, noise, alphas_cumprod):
    """Noises clean images: sqrt(a-bar_t) x0 + sqrt(1 - a-bar_t) noise.

    x0, noise: (B, H, W, C) float32; timesteps: (B,) int; alphas_cumprod: (T,) array or tensor.
    Returns x_t, (B, H, W, C).
    """
    alpha_bar = tf.gather(tf.cast(alphas_cumprod, tf.float32), timesteps)[:, None, None, None]
    return tf.sqrt(alpha_bar) * x0 + tf.sqrt(1.0 - alpha_bar) * noise
