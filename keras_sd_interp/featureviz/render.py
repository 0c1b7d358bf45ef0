"""The feature-visualization loop (lucent's `render`): one compiled step for a whole batch.

    objective = sae_feature(site, sae, 7, batch=0) + channel(site, 3, batch=1)
    result = visualize(unet, objective, VizSettings.preset("diffusion"), batch_size=2,
                       timesteps=[500, 300], context=empty_context)
    images = decode.decode_to_uint8(decoder, result.latents, "corrected")

Each step: latent = param(); transforms (jitter, rotate/scale); at the item's timestep, the
forward-process noising z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps with fresh eps (diffusion);
the U-Net up to the objective's sites; loss = -objective + penalties; gradient blurred and
preconditioned; optimizer step. Items are independent (per-item objective terms and
penalties), so a batch of B costs one batched forward+backward per step.
"""

import dataclasses
import time

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_sd_interp.featureviz import penalties as pen
from keras_sd_interp.featureviz import transforms as tfm
from keras_sd_interp.featureviz.paper import course
from keras_sd_interp.featureviz.param import Parametrization, normal_start, pixel_start
from keras_sd_interp.featureviz.presets import PRESETS
from keras_sd_interp.lens import taps
from keras_sd_interp.lens.names import unet_conditioning

OPTIMIZERS = ("rms_step", "adam", "adamw")


@dataclasses.dataclass(frozen=True)
class VizSettings:
    """All switches of the loop; `VizSettings.preset(name, **overrides)` fills them."""

    param: str = "direct"
    start: str = "normal"            # "normal" | "paper" (uniform*20+128); or pass start=
    optimizer: str = "adamw"
    learning_rate: float = 0.05
    steps: int = 150
    timestep: int = 500
    timestep_schedule: str = "fixed"  # "fixed" | "step_index" (the course: t = i)
    noise: bool = True
    jitter: int = 2
    rotate_degrees: float = 20.0
    scale: float = 1.05
    jitter_after: int = 0
    tv: float = 5.0
    range_weight: float = 1.0
    moments_weight: float = 0.5
    blur_sigma: float = 0.5
    precondition: bool = True
    seed: int = 0

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.timestep_schedule not in ("fixed", "step_index"):
            raise ValueError(f"timestep_schedule {self.timestep_schedule!r}: use 'fixed' or "
                             "'step_index'")
        if not 0 <= self.timestep < 1000:
            raise ValueError(f"timestep={self.timestep} must be in 0..999")
        if self.steps <= 0 or self.learning_rate <= 0:
            raise ValueError(f"steps={self.steps} and learning_rate={self.learning_rate} must "
                             "be > 0")

    @classmethod
    def preset(cls, name, **overrides):
        if name not in PRESETS:
            raise ValueError(f"preset {name!r} is not one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


@dataclasses.dataclass
class VizResult:
    """latents (B, h, w, 4) clean final latents; objective (steps, B) values; step_seconds
    (steps,) wall time of each step (the first includes tracing); images (B, H, W, C) in
    [-1, 1]: the optimized images of the pixel parametrization (None for the others)."""

    latents: np.ndarray
    objective: np.ndarray
    step_seconds: np.ndarray
    images: np.ndarray = None


def start_latents(settings, shape, batch_size):
    """(batch_size,) + shape float32, one seeded draw repeated: `param.pixel_start` for the
    pixel parametrization (`shape` is then the image's), else `settings.start`'s: "normal"
    (`param.normal_start`) or "paper" (`course.start_latents`, cast to float32)."""
    if settings.param == "pixel":
        return pixel_start(shape, batch_size, settings.seed)
    if settings.start == "paper":
        return course.start_latents(shape, batch_size, settings.seed).astype(np.float32)
    if settings.start == "normal":
        return normal_start(shape, batch_size, settings.seed)
    raise ValueError(f"start {settings.start!r}: use 'normal', 'paper' or pass start=")


def _optimizer(settings):
    if settings.optimizer == "adam":
        return tf.keras.optimizers.Adam(settings.learning_rate)
    if settings.optimizer == "adamw":
        return tf.keras.optimizers.AdamW(settings.learning_rate)
    return None


def _build_step(unet, objective, settings, param, optimizer, stateless=False):
    """The compiled step; with `stateless`, its random draws come from its `seed` input."""
    tap = taps.tap_model(unet, list(objective.sites))
    s = settings

    @tf.function
    def step(t_emb, alphas, context, sigma, seed):
        seeds = tf.random.experimental.stateless_split(seed, 5) if stateless else [None] * 5
        with tf.GradientTape() as tape:
            z = param.latent()
            x = tfm.jitter(z, s.jitter, seeds[0])
            x = tfm.random_affine(x, s.rotate_degrees, s.scale, (seeds[1], seeds[2]))
            x = tfm.jitter(x, s.jitter_after, seeds[3])
            if s.noise:
                x = tfm.noise_to_timestep(x, alphas, tfm.normal(tf.shape(x), seeds[4]))
            acts = tap([x, t_emb, context])
            value = objective(acts)                                        # (B,)
            loss = -value
            if s.tv:
                loss += s.tv * pen.total_variation(z)
            if s.range_weight:
                loss += s.range_weight * pen.out_of_range(z)
            if s.moments_weight:
                loss += s.moments_weight * pen.moments(z)
            total = tf.reduce_sum(loss)
        grad = tape.gradient(total, param.variable)
        if param.kind == "direct":
            if s.blur_sigma:
                grad = tfm.blur_gradient(grad, sigma)
            if s.precondition:
                grad = tfm.precondition_gradient(grad)
        if optimizer is None:   # the course's update: normalised by each item's RMS
            param.variable.assign_sub(course.rms_normalised_step(grad, s.learning_rate))
        else:
            optimizer.apply_gradients([(grad, param.variable)])
        return value

    return step


def pixel_shape(encoder, latent_shape):
    """The image shape (H, W, C) that `encoder` turns into latents of `latent_shape` (h, w, 4).
    Works for encoders built at a fixed size (tiny) and at (None, None, 3) (keras-cv's)."""
    h, w, _ = latent_shape
    height, width, channels = encoder.inputs[0].shape[1:]
    if height is None or width is None:   # a symbolic probe gives the encoder's factor
        factor = 64 // encoder.compute_output_shape((1, 64, 64, channels))[1]
        return (h * factor, w * factor, channels)
    latent = tuple(encoder.outputs[0].shape[1:3])
    if latent != (h, w):
        raise ValueError(f"the encoder turns {(height, width)} images into {latent} latents, "
                         f"the U-Net takes {(h, w)}: build both at the same image size")
    return (height, width, channels)


def visualize(unet, objective, settings, batch_size, timesteps=None, context=None, start=None,
              progress=True, encoder=None):
    """Optimizes `batch_size` latents for `objective` (per-item values, maximized).

    Args:
        unet: an SDUNet (any context length).
        objective: an `objectives.Objective`.
        settings: VizSettings (see `presets`).
        timesteps: None (settings.timestep for all), an int, or (B,) ints per item.
        context: (B or 1, tokens, width) text context; None: zeros (the paper's empty context).
        start: (B, h, w, 4) starting latents (e.g. a generated sample); None: settings.start.
            With param="pixel": (B, H, W, C) starting images in [-1, 1].
        encoder: param="pixel" only: the VAE image encoder (`pipe.image_encoder`).
    Returns:
        VizResult.
    """
    return Visualizer(unet, objective, settings, batch_size, encoder).run(
        timesteps, context, start, progress)


class Visualizer:
    """`visualize` for many batches of one shape: the step is compiled once, and each `run`
    starts the parametrization and the optimizer afresh. The objective must then read its
    per-item targets from tensors (e.g. `objectives.item_sae_features` over a tf.Variable) so
    that a new batch is a new value, not a new trace.

    Args: unet, objective, settings, batch_size, encoder as `visualize`; stateless: draw the
    jitter, affine and noise from seeds (settings.seed, step), so that a batch's result does not
    depend on what ran before it in this process (the atlas's shards); False (visualize's):
    stateful draws seeded by `tf.random.set_seed(settings.seed)`, as before.
    """

    def __init__(self, unet, objective, settings, batch_size, encoder=None, stateless=False):
        self.unet, self.settings, self.batch_size = unet, settings, batch_size
        self.stateless = stateless
        shape = tuple(unet.inputs[0].shape[1:])
        if settings.param == "pixel":
            if encoder is None:
                raise ValueError("param='pixel' needs encoder=pipe.image_encoder (the VAE "
                                 "encoder that turns the optimized image into the U-Net's "
                                 "latent)")
            shape = pixel_shape(encoder, shape)
        self.shape = (batch_size,) + shape
        self.param = Parametrization(settings.param, np.zeros(self.shape, np.float32), encoder)
        self.optimizer = _optimizer(settings)
        self.step = _build_step(unet, objective, settings, self.param, self.optimizer,
                                stateless)

    def _reset(self, start):
        self.param.reset(start)
        if self.optimizer is not None and self.optimizer.built:
            for variable in self.optimizer.variables:
                if "learning_rate" not in variable.path:   # iterations, moments, velocities
                    variable.assign(tf.zeros_like(variable))

    def run(self, timesteps=None, context=None, start=None, progress=False):
        """One batch, arguments as `visualize`'s; returns VizResult."""
        settings, batch_size = self.settings, self.batch_size
        tf.random.set_seed(settings.seed)
        if start is None:
            start = start_latents(settings, self.shape[1:], batch_size)
        start = np.asarray(start, np.float32)
        if start.shape != self.shape:
            raise ValueError(f"start has shape {start.shape}; expected {self.shape}")
        self._reset(start)
        ts = np.broadcast_to(np.asarray(settings.timestep if timesteps is None else timesteps),
                             (batch_size,)).astype(np.int64)
        if ts.min() < 0 or ts.max() > 999:
            raise ValueError(f"timesteps {ts.tolist()} must be in 0..999")
        alphas = tf.constant(tfm.ALPHAS_CUMPROD[ts])
        fixed_emb, context = unet_conditioning(self.unet, batch_size, ts, context)
        values, seconds = [], []
        for i in tqdm(range(settings.steps), desc=f"visualize {batch_size}",
                      disable=not progress):
            t_emb = fixed_emb
            if settings.timestep_schedule == "step_index":
                t_emb = unet_conditioning(self.unet, batch_size, i)[0]
            sigma = tf.constant(settings.blur_sigma * (1.0 - i / settings.steps), tf.float32)
            seed = tf.constant([settings.seed, i], tf.int32)
            began = time.perf_counter()
            values.append(self.step(t_emb, alphas, context, sigma, seed).numpy())
            seconds.append(time.perf_counter() - began)
        latents = self.param.latent().numpy()
        if not np.isfinite(latents).all():
            raise FloatingPointError(f"visualization diverged: non-finite latent; lower the "
                                     f"learning rate (now {settings.learning_rate})")
        images = self.param.image().numpy() if settings.param == "pixel" else None
        return VizResult(latents, np.stack(values), np.array(seconds), images)


def denoised_estimate(unet, latents, timesteps, context=None, seed=0):
    """The U-Net's one-step estimate of the clean latent from `latents` (B, h, w, 4) noised to
    `timesteps` (int or (B,)) with seeded noise: x0 = (z_t - sqrt(1 - abar) eps) / sqrt(abar).
    What the model makes of an optimized latent at t, to decode instead of the latent itself.
    Returns (B, h, w, 4) float32."""
    latents = np.asarray(latents, np.float32)
    b = len(latents)
    ts = np.broadcast_to(np.asarray(timesteps), (b,)).astype(np.int64)
    abar = tfm.ALPHAS_CUMPROD[ts].astype(np.float32)[:, None, None, None]
    noise = np.random.default_rng(seed).standard_normal(latents.shape).astype(np.float32)
    noisy = np.sqrt(abar) * latents + np.sqrt(1 - abar) * noise
    t_emb, context = unet_conditioning(unet, b, ts, context)
    eps = np.asarray(unet([tf.constant(noisy), t_emb, context]), np.float32)
    return (noisy - np.sqrt(1 - abar) * eps) / np.sqrt(abar)
