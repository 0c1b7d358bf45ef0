"""The paper's filter visualization, compiled once and run for a whole batch of filters.

    settings = DescentSettings.paper()                       # the course loop, bug for bug
    targets = [layer_target(unet, 12, 354), conv_target(unet, 7, 3, "corrected")]
    result = optimize_latents(unet, targets, settings)       # latents (n, h, w, 4), losses
    images = decode_to_uint8(decoder, result.latents, settings.mode)

Each step: tap the U-Net as far as the deepest target, take each item's objective (the mean of
its own channel, `objectives.filter_batch`), and move the latent by the course's RMS-normalised
step (`course.rms_normalised_step`) against the gradient (descent, the paper) or along it
(ascent). `paper` mode is the course: its float64 start, t = step index, eta 5, 300 steps.
`corrected` mode changes what the course got wrong: an N(0, 1) float32 start (what the decoder
was trained on), one fixed timestep, a smaller eta. The context is all zeros, which equals the
course's empty context (`to_k` and `to_v` have no bias), whatever the U-Net's context length.

Why the corrected mode runs here and not through `render.visualize` (the lucent-style loop):
this step is traced once per set of tapped addresses and kept in the model's cache, with each
item's channel an input, so every later batch on the same addresses, and the paper page's
ascent pass after its descent pass, reuse the trace. `render.visualize` takes an arbitrary
objective and traces its step per call; on the paper page that costs 12-20 s per batch on the
tiny model on 2 CPU cores (about a quarter of a `--steps=5` run), more on SD v1.4.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_sd_interp.featureviz.decode import decode_to_uint8
from keras_sd_interp.featureviz.objectives import filter_batch
from keras_sd_interp.featureviz.paper import course
from keras_sd_interp.featureviz.param import normal_start
from keras_sd_interp.featureviz.targets import forward_order, target_table
from keras_sd_interp.lens import taps
from keras_sd_interp.lens.cache import model_cache
from keras_sd_interp.lens.names import unet_conditioning

MODES = ("paper", "corrected")
DIRECTIONS = ("descent", "ascent")
CORRECTED_STEPS = 50
CORRECTED_LEARNING_RATE = 0.05


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
    steps: int = CORRECTED_STEPS
    learning_rate: float = CORRECTED_LEARNING_RATE
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
        """The course's defaults (`course.STEPS` steps of descent with eta
        `course.LEARNING_RATE`)."""
        return cls(**{"mode": "paper", "steps": course.STEPS,
                      "learning_rate": course.LEARNING_RATE, **overrides})

    @classmethod
    def corrected(cls, **overrides):
        return cls(**{"mode": "corrected", **overrides})

    def start_latents(self, latent_shape, batch_size):
        """(batch_size,) + latent_shape: the course's float64 start (paper) or N(0, 1) float32."""
        if self.mode == "paper":
            return course.start_latents(latent_shape, batch_size, self.seed)
        return normal_start(latent_shape, batch_size, self.seed)

    def timesteps(self):
        """Timestep of every step: (steps,) float32."""
        if self.mode == "paper":
            return course.timesteps(self.steps)
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
        def step(latent, t_emb, context, indices, weights, step_size):
            with tf.GradientTape() as tape:
                tape.watch(latent)
                acts = tap([tf.cast(latent, tf.float32), t_emb, context])
                losses = filter_batch(addresses, indices, weights)(acts)
                total = tf.reduce_sum(losses)  # items are independent: each gets its own gradient
            grad = tape.gradient(total, latent)
            new_latent = latent - course.rms_normalised_step(grad, step_size)
            finite = tf.reduce_all(tf.math.is_finite(new_latent))
            return new_latent, losses, finite

        cache[key] = step
    return cache[key]


def optimize_latents(unet, targets, settings, progress=True, addresses=None):
    """Optimizes one latent per target, all in one batch.

    Args:
        unet: an SDUNet (the paper builds it with max_text_length=0).
        targets: list of FilterTarget (any mix of addresses).
        settings: DescentSettings.
        progress: show a tqdm bar over steps.
        addresses: the tapped addresses (None: the targets'); a fixed superset lets one
            compiled step serve every batch (the atlas taps every conv once, instead of tracing
            a truncated U-Net per conv).

    Returns:
        DescentResult with latents (n, h, w, 4) and losses (steps, n).

    Raises:
        FloatingPointError naming the step where a loss or the latent stopped being finite.
    """
    addresses, indices, weights = target_table(targets, addresses)
    step = _compiled_step(unet, addresses)
    n = len(targets)
    latent = tf.constant(settings.start_latents(unet.inputs[0].shape[1:], n))
    timesteps = settings.timesteps()
    sign = 1.0 if settings.direction == "descent" else -1.0
    step_size = tf.constant(sign * settings.learning_rate, latent.dtype)
    losses = []
    for i in tqdm(range(settings.steps), desc=f"{n} filters", disable=not progress):
        t_emb, context = unet_conditioning(unet, n, timesteps[i])
        latent, step_losses, finite = step(latent, t_emb, context, indices, weights, step_size)
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


def visualize_batches(unet, decoder, targets, settings, batch_size=16, progress=True):
    """Many filters, a batch at a time, shallow targets first (`targets.forward_order`).

    Yields:
        (batch, DescentResult, images): batch a list of FilterTargets, images uint8
        (len(batch), H, W, C) decoded as `settings.mode` says. Writing them to files,
        resumably, is `reports.featureviz.FilterFiles`.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    ordered = forward_order(unet, targets)
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        result = optimize_latents(unet, batch, settings, progress=progress)
        yield batch, result, decode_to_uint8(decoder, result.latents, settings.mode)
