"""The latent-descent loop, compiled once and run for a whole batch of filters.

Each step: tap the U-Net as far as the deepest target, take one loss per item, normalise each
item's gradient by its own RMS (+ 1e-5), and move the latent by `learning_rate` against it
(descent, the paper) or along it (ascent). In `paper` mode the timestep embedding at step i is
that of t = i and the latent is float64, as in the course code; the corrected mode uses one
fixed timestep. The context is all zeros, which equals the course's empty context (`to_k` and
`to_v` have no bias), whatever the U-Net's context length.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_sd_interp.lens import taps
from keras_sd_interp.lens.cache import model_cache
from keras_sd_interp.featureviz.init import initial_latents
from keras_sd_interp.featureviz.objectives import channel_table, item_losses
from keras_sd_interp.models.layers import timestep_embedding

MODES = ("paper", "corrected")
DIRECTIONS = ("descent", "ascent")


@dataclasses.dataclass(frozen=True)
class DescentSettings:
    """How to optimize.

    Attributes:
        mode: "paper" (the course loop bug for bug) or "corrected".
        steps: number of gradient steps (the paper: 300; corrected default 50: with eta 0.05
            and RMS-normalised steps, 300 steps carry the tiny model's latent to std 2..13,
            the decoded image to +-25 and 40% of its pixels into clipping; at 50 steps the
            latent stays at std 1..2.2).
        learning_rate: eta (the paper: 5; the corrected default is smaller, see `corrected`).
        timestep: corrected mode's fixed timestep (ignored in paper mode, where t = step index).
        direction: "descent" (the paper: minimally exciting) or "ascent".
        seed: seed of the starting latent.
    """

    mode: str = "corrected"
    steps: int = 50
    learning_rate: float = 0.05
    timestep: int = 500
    direction: str = "descent"
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode {self.mode!r} is not one of {MODES}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction {self.direction!r} is not one of {DIRECTIONS}")
        if not isinstance(self.steps, int) or self.steps <= 0:
            raise ValueError(f"steps={self.steps} must be a positive integer (the paper: 300)")
        if not math.isfinite(self.learning_rate) or self.learning_rate <= 0:
            raise ValueError(
                f"learning_rate={self.learning_rate} must be a finite number > 0 (the paper: 5)"
            )
        if not 0 <= self.timestep < 1000:
            raise ValueError(f"timestep={self.timestep} must be in 0..999")

    @classmethod
    def paper(cls, **overrides):
        """The course's defaults: 300 steps of descent with eta 5."""
        return cls(**{"mode": "paper", "steps": 300, "learning_rate": 5.0, **overrides})

    @classmethod
    def corrected(cls, **overrides):
        return cls(**{"mode": "corrected", **overrides})

    def timesteps(self):
        """Timestep of every step: (steps,) float32."""
        if self.mode == "paper":
            return np.arange(self.steps, dtype=np.float32)
        return np.full(self.steps, self.timestep, np.float32)


@dataclasses.dataclass
class DescentResult:
    """latents: (n, h, w, 4) final latents (float64 in paper mode); losses: (steps, n)."""

    latents: np.ndarray
    losses: np.ndarray


def _compiled_step(unet, addresses):
    """One tf.function step for `addresses`, in the U-Net's cache (traced once per shape)."""
    key = ("featureviz.step", tuple(addresses))
    cache = model_cache(unet)
    if key not in cache:
        tap = taps.tap_model(unet, addresses)

        @tf.function(reduce_retracing=True)
        def step(latent, t_emb, context, channels, masks, step_size):
            with tf.GradientTape() as tape:
                tape.watch(latent)
                acts = tap([tf.cast(latent, tf.float32), t_emb, context])
                losses = item_losses(acts, addresses, channels, masks)
                total = tf.reduce_sum(losses)  # items are independent: each gets its own gradient
            grad = tape.gradient(total, latent)
            rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=[1, 2, 3], keepdims=True))
            new_latent = latent - step_size * grad / (rms + 1e-5)
            finite = tf.reduce_all(tf.math.is_finite(new_latent))
            return new_latent, losses, finite

        cache[key] = step
    return cache[key]


def optimize_latents(unet, targets, settings, progress=True):
    """Optimizes one latent per target, all in one batch.

    Args:
        unet: an SDUNet (the paper builds it with max_text_length=0).
        targets: list of FilterTarget (any mix of addresses).
        settings: DescentSettings.
        progress: show a tqdm bar over steps.

    Returns:
        DescentResult with latents (n, h, w, 4) and losses (steps, n).

    Raises:
        FloatingPointError naming the step where a loss or the latent stopped being finite.
    """
    addresses, channels, masks = channel_table(targets)
    step = _compiled_step(unet, addresses)
    n = len(targets)
    latent = tf.constant(initial_latents(settings.mode, unet.inputs[0].shape[1:], n, settings.seed))
    context = tf.zeros((n,) + tuple(unet.inputs[2].shape[1:]))
    t_embs = timestep_embedding(settings.timesteps(), unet.inputs[1].shape[-1])
    sign = 1.0 if settings.direction == "descent" else -1.0
    step_size = tf.constant(sign * settings.learning_rate, latent.dtype)
    losses = []
    for i in tqdm(range(settings.steps), desc=f"{n} filters", disable=not progress):
        t_emb = tf.repeat(t_embs[i : i + 1], n, axis=0)
        latent, step_losses, finite = step(latent, t_emb, context, channels, masks, step_size)
        step_losses = step_losses.numpy()
        if not (bool(finite) and np.isfinite(step_losses).all()):
            bad = [t.stem for t, loss in zip(targets, step_losses) if not np.isfinite(loss)]
            raise FloatingPointError(
                f"latent descent diverged at step {i} of {settings.steps}: non-finite "
                f"{'loss for ' + ', '.join(bad) if bad else 'latent'}; lower the learning rate "
                f"(now {settings.learning_rate})"
            )
        losses.append(step_losses)
    return DescentResult(latent.numpy(), np.stack(losses))
