"""Parametrizations of the latent: what the optimizer holds, and how it becomes a latent.

`direct`: the variable is the latent (B, h, w, 4). `fourier`: the variable is a spectrum
(2, B, 4, h, w//2+1) (real and imaginary parts) scaled by 1/f (lucent's `fft_image`, decay 1);
the latent is its inverse real FFT, so a step moves low frequencies more. Both start from a
given latent (e.g. N(0, 1) or a generated sample), exactly. `pixel`: the variable is an image
before a tanh (B, H, W, C), and the latent is the VAE image encoder's output for tanh(variable)
in [-1, 1] (`pipe.image_encoder`: the scaled posterior mean), so the optimizer moves pixels and
every step also runs the encoder forward and backward.

Where they start: `normal_start` (N(0, 1), the distribution of the scaled latents the decoder
was trained on) or `pixel_start` (lucent's N(0, 0.01^2) around mid-gray); the course's start is
`paper.course.start_latents`. Every item of a batch starts from the same seeded draw.
"""

import numpy as np
import tensorflow as tf

PARAMETRIZATIONS = ("direct", "fourier", "pixel")
PIXEL_CLIP = 0.999  # start images are clipped to +-this before atanh


def normal_start(shape, batch_size, seed):
    """N(0, 1) from `default_rng(seed)`, one draw repeated: float32 (batch_size,) + shape."""
    one = np.random.default_rng(seed).standard_normal((1,) + tuple(shape))
    return np.repeat(one, batch_size, axis=0).astype(np.float32)


def pixel_start(shape, batch_size, seed):
    """0.01 * N(0, 1) (mid-gray in [-1, 1]), one draw repeated: float32 (batch_size,) + shape."""
    one = 0.01 * np.random.default_rng(seed).standard_normal((1,) + tuple(shape))
    return np.repeat(one, batch_size, axis=0).astype(np.float32)


def spectrum_scale(h, w, decay_power=1.0):
    """1 / max(|f|, 1/max(h, w))^decay over the rfft2 grid (h, w//2+1), |f| in cycles/sample,
    times sqrt(h * w) (lucent's normalisation)."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    freqs = np.sqrt(fy * fy + fx * fx)
    return (1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power * np.sqrt(h * w)).astype(
        np.float32)


class Parametrization:
    """`variable` (a tf.Variable) and `latent()` -> (B, h, w, 4) float32.

    Args:
        kind: "direct", "fourier" or "pixel".
        start: the start latent (B, h, w, 4); for "pixel" the start image (B, H, W, C) in
            [-1, 1].
        encoder: "pixel" only: the VAE image encoder, image (B, H, W, C) -> latent (B, h, w, 4).
    """

    def __init__(self, kind, start, encoder=None):
        if kind not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization {kind!r} is not one of {PARAMETRIZATIONS}")
        start = np.asarray(start, np.float32)
        self.kind, self.shape = kind, start.shape
        if kind == "pixel":
            if encoder is None:
                raise ValueError("the pixel parametrization needs the VAE image encoder: pass "
                                 "encoder=pipe.image_encoder")
            self.encoder = encoder
        elif kind == "fourier":
            _, h, w, _ = start.shape
            self.scale = tf.constant(spectrum_scale(h, w))
        self.variable = tf.Variable(self._encoded(start))

    def _encoded(self, start):
        """The variable's value that gives `start` (a latent, or the pixel kind's image)."""
        if self.kind == "pixel":
            return np.arctanh(np.clip(start, -PIXEL_CLIP, PIXEL_CLIP))
        if self.kind == "direct":
            return start
        _, h, w, _ = start.shape
        spec = np.fft.rfft2(np.transpose(start, (0, 3, 1, 2))) / spectrum_scale(h, w)
        return np.stack([spec.real, spec.imag]).astype(np.float32)

    def reset(self, start):
        """Starts again from `start` (the shape given at construction)."""
        start = np.asarray(start, np.float32)
        if start.shape != self.shape:
            raise ValueError(f"start has shape {start.shape}; this parametrization holds "
                             f"{self.shape}")
        self.variable.assign(self._encoded(start))

    def image(self):
        """pixel: the image (B, H, W, C) in [-1, 1] that the encoder sees."""
        if self.kind != "pixel":
            raise ValueError(f"the {self.kind!r} parametrization has no image; use latent()")
        return tf.tanh(self.variable)

    def latent(self):
        """(B, h, w, 4) float32."""
        if self.kind == "pixel":
            return self.encoder(self.image())
        if self.kind == "direct":
            return self.variable
        spec = tf.complex(self.variable[0] * self.scale, self.variable[1] * self.scale)
        image = tf.signal.irfft2d(spec, fft_length=self.shape[1:3])      # (B, 4, h, w)
        return tf.transpose(image, (0, 2, 3, 1))
