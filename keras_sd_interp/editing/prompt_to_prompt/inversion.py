"""DDIM inversion and null-text inversion of real images (Mokady et al. 2022, the
`null_text_w_ptp` notebook of google/prompt-to-prompt), on any pipeline with an image encoder
(tiny's VAE, SD v1.4's keras-cv `ImageEncoder`: the same code path).

    images = check_images(pipe, real)              # (n, H, W, C) in [-1, 1]; errors before a model
    plain = ddim_inversion(pipe, images, captions, num_steps=25)        # guidance 1: cond only
    inverted = null_text_inversion(pipe, plain, guidance=5.0)
    inverted.reconstruct(pipe)                     # Generation: x_T with the per-step embeddings
    editor.generate(**inverted.generate_args())    # prompt-to-prompt from the real image

DDIM inversion runs the sampler's steps backwards as theirs (`ddim_loop` / `next_step`): the
noise estimate of step i is taken at the lower latent with step i's timestep, and
x_{a_t} = sqrt(a_t) x0 + sqrt(1 - a_t) eps with x0 = (x - sqrt(1 - a_prev) eps) / sqrt(a_prev).
`latents[0]` is x_T, `latents[i]` the latent entering sampling step i, `latents[N]` the
encoded image.

Null-text inversion, for every sampling step i from x_T: Adam (betas 0.9, 0.999, eps 1e-8, as
torch's) on the unconditional embedding, lr 1e-2 (1 - i / 100), at most `num_inner_steps`
updates, an image stops once its loss (MSE of the guided step's result against `latents[i+1]`,
before the update) is below epsilon + i 2e-5; the embedding carries over to the next step; then
the latent moves one guided step with it. A batch of images is optimised at once, each image's
embedding on its own loss (an image that stopped is frozen for the rest of the step). The inner
update is one `tf.function` traced once per batch size (`NullTextOptimizer`).
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from keras_sd_interp.lens.cache import model_cache
from keras_sd_interp.models.sampler import check_guidance, check_num_steps, step_schedule

IMAGE_CHANNELS = {"tiny": 1, "sd14": 3}
RANGE_SLACK = 1e-3  # floats may overshoot [-1, 1] by this much (decoder outputs); clipped
ADAM = (0.9, 0.999, 1e-8)  # torch.optim.Adam's defaults, as the notebook uses


def check_images(pipe, images):
    """Real images for `pipe` -> float32 (n, H, W, C) in [-1, 1]. Needs no model (only the
    pipeline's `config.name`, `img_height`, `img_width`).

    Accepts uint8 (0..255) or float in [-1, 1]; shape (n, H, W, C), (H, W, C), or for a
    one-channel model (n, H, W) / (H, W). Raises ValueError naming the bad size or range."""
    return check_image_array(images, pipe.config.name, (pipe.img_height, pipe.img_width))


def check_image_array(images, model, size):
    """`check_images` for a model name ("tiny", "sd14") and image size (H, W)."""
    array = np.asarray(images)
    channels = IMAGE_CHANNELS[model]
    if channels == 1 and array.ndim in (2, 3) and array.shape[-2:] == tuple(size):
        array = array[..., None]
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[1:] != (*size, channels):
        raise ValueError(f"images of shape {np.shape(images)}: {model} at "
                         f"{size[0]}x{size[1]} takes (n, {size[0]}, {size[1]}, {channels}) "
                         f"(or ({size[0]}, {size[1]}, {channels}))")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 127.5 - 1.0
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise ValueError(f"images of dtype {array.dtype}: give uint8 0..255 or finite floats "
                         "in [-1, 1]")
    low, high = float(array.min()), float(array.max())
    if low < -1 - RANGE_SLACK or high > 1 + RANGE_SLACK:
        raise ValueError(f"image values span {low:.3g}..{high:.3g}: give floats in [-1, 1] "
                         "(x / 127.5 - 1 for 0..255) or uint8")
    return np.clip(array, -1.0, 1.0).astype(np.float32)


def check_prompts(prompts, num_images):
    """One caption for all images or one per image -> a list of num_images strings."""
    prompts = [prompts] * num_images if isinstance(prompts, str) else list(prompts)
    if len(prompts) != num_images or not all(isinstance(p, str) and p for p in prompts):
        raise ValueError(f"prompts={prompts!r}: give one non-empty caption, or one per image "
                         f"({num_images})")
    return prompts


def psnr(images, reference):
    """PSNR in dB of images against reference (both (n, ...) in [-1, 1]; peak = the range 2,
    i.e. as on [0, 1]). Returns (n,) float."""
    error = (np.clip(images, -1, 1) - np.clip(reference, -1, 1)) ** 2 / 4
    mse = error.reshape(len(error), -1).mean(1)
    return 10 * np.log10(1.0 / np.maximum(mse, 1e-12))


def ddim_move(latent, eps, coefficients):
    """The DDIM update as the sampler computes it: coefficients (4,) sqrt(a_from),
    sqrt(1 - a_from), sqrt(a_to), sqrt(1 - a_to); latent and eps (n, h, w, 4)."""
    s_from, s1_from, s_to, s1_to = tf.unstack(coefficients)
    return s_to * ((latent - s1_from * eps) / s_from) + s1_to * eps


def coefficients(a_from, a_to):
    return tf.constant([math.sqrt(a_from), math.sqrt(1 - a_from), math.sqrt(a_to),
                        math.sqrt(1 - a_to)], tf.float32)


def _guided(sampler, latent, timestep, uncond, cond, guidance):
    eps_cond = sampler.noise_prediction(latent, timestep, cond)
    if uncond is None:
        return eps_cond
    eps_uncond = sampler.noise_prediction(latent, timestep, uncond)
    return eps_uncond + guidance * (eps_cond - eps_uncond)


def compiled_steps(pipe):
    """The pipeline's compiled pieces (made once per U-Net): `move` (one guided DDIM move),
    `move_cond` (conditional only), `eps` (one context's noise estimate), `encode`."""
    sampler = pipe.sampler

    def build():
        for model in (pipe.image_encoder, pipe.diffusion_model, pipe.text_encoder):
            del model  # built (and weights loaded) eagerly, never inside a compiled function

        def move(latent, timestep, coefs, uncond, cond, guidance):
            return ddim_move(latent, _guided(sampler, latent, timestep, uncond, cond, guidance),
                             coefs)

        def move_cond(latent, timestep, coefs, cond):
            return ddim_move(latent, sampler.noise_prediction(latent, timestep, cond), coefs)

        return {"move": tf.function(move), "move_cond": tf.function(move_cond),
                "eps": tf.function(sampler.noise_prediction),
                "encode": tf.function(lambda images: pipe.image_encoder(images))}

    return model_cache(pipe.diffusion_model).get_or_build("p2p.inversion_steps", build)


@dataclasses.dataclass
class Inversion:
    """A real image's way back to noise.

    Attributes:
        images: float32 (n, H, W, C), the real images in [-1, 1].
        latents: float32 (N + 1, n, h, w, 4) in sampling order: [0] = x_T, [N] = the encoded
            image (x_0); [i] = the latent entering sampling step i.
        prompts: the n captions; num_steps: N.
        guidance: plain DDIM: the inversion's guidance; null-text: the guidance the
            embeddings were optimised for (generate with it).
        uncond_embeddings: None (plain DDIM) or float32 (N, n, L, D), one per step.
        inner_steps, losses: null-text only, (N, n): updates made and the last loss.
    """

    images: np.ndarray
    latents: np.ndarray
    prompts: list
    num_steps: int
    guidance: float
    uncond_embeddings: np.ndarray = None
    inner_steps: np.ndarray = None
    losses: np.ndarray = None

    @property
    def x_T(self):
        return self.latents[0]

    def generate_args(self, guidance=None):
        """Keyword arguments that start a generation (or a `PromptToPrompt.generate`) from
        x_T with the per-step embeddings (null-text) at the inversion's guidance."""
        args = {"diffusion_noise": self.x_T,
                "guidance": self.guidance if guidance is None else guidance}
        if self.uncond_embeddings is not None:
            args["uncond_embeddings"] = self.uncond_embeddings
        return args

    def reconstruct(self, pipe, guidance=None):
        """The sampler's generation of the captions from x_T (per-step embeddings if any):
        a `Generation` whose images should match `images`."""
        args = self.generate_args(guidance)
        return pipe.sampler.generate(self.prompts, num_steps=self.num_steps,
                                     unconditional_guidance_scale=args["guidance"],
                                     diffusion_noise=args["diffusion_noise"],
                                     uncond_contexts=args.get("uncond_embeddings"))


def encode_images(pipe, images):
    """check_images, then the pipeline's image encoder: (n, h, w, 4) latents (x_0)."""
    return compiled_steps(pipe)["encode"](tf.constant(check_images(pipe, images)))


def ddim_inversion(pipe, images, prompts, num_steps=50, guidance=1.0, negative_prompt=None,
                   progress=False):
    """Plain DDIM inversion of real images with their captions.

    Args:
        images: see `check_images`; prompts: one caption or one per image.
        num_steps: DDIM steps (0 is an error: 1..1000).
        guidance: 1 (default, theirs): conditional noise estimate only; otherwise classifier-free
            guidance with the empty (or negative) prompt's embedding.

    Returns:
        Inversion (latents x_T .. x_0; no embeddings).
    """
    array = check_images(pipe, images)
    prompts = check_prompts(prompts, len(array))
    num_steps = check_num_steps(num_steps)
    guidance = check_guidance(guidance)
    steps, sampler = compiled_steps(pipe), pipe.sampler
    latent = steps["encode"](tf.constant(array))
    cond = sampler.encode(prompts)
    uncond = None if guidance == 1.0 else tf.repeat(
        sampler.encode([negative_prompt or ""]), len(array), axis=0)
    trajectory = [latent]
    schedule = step_schedule(num_steps)
    for timestep, a_t, a_prev in tqdm(schedule[::-1], desc="DDIM inversion",
                                      disable=not progress, leave=False):
        coefs, t = coefficients(a_prev, a_t), tf.constant(timestep, tf.int32)
        if uncond is None:
            latent = steps["move_cond"](latent, t, coefs, cond)
        else:
            latent = steps["move"](latent, t, coefs, uncond, cond, tf.constant(guidance))
        trajectory.append(latent)
    latents = np.stack([x.numpy() for x in trajectory[::-1]])
    return Inversion(array, latents, prompts, num_steps, guidance)


class NullTextOptimizer:
    """Adam on a batch of unconditional embeddings (n, L, D), one compiled update.

    `update(latent, timestep, coefs, eps_cond, target, guidance, lr, active)` takes one Adam
    step on every active image's embedding against the MSE of its guided DDIM step to
    `target`, and returns the per-image loss before the update (n,)."""

    def __init__(self, pipe, embedding_shape):
        self.sampler = pipe.sampler
        self.embedding = tf.Variable(tf.zeros(embedding_shape), trainable=True)
        self.m = tf.Variable(tf.zeros(embedding_shape), trainable=False)
        self.v = tf.Variable(tf.zeros(embedding_shape), trainable=False)
        self.count = tf.Variable(0.0, trainable=False)
        self.update = tf.function(self._update)

    def reset(self, embedding=None):
        """A fresh Adam (the notebook makes one per step); optionally a new embedding."""
        if embedding is not None:
            self.embedding.assign(embedding)
        self.m.assign(tf.zeros_like(self.m))
        self.v.assign(tf.zeros_like(self.v))
        self.count.assign(0.0)

    def _update(self, latent, timestep, coefs, eps_cond, target, guidance, lr, active):
        beta1, beta2, eps = ADAM
        with tf.GradientTape() as tape:
            eps_uncond = self.sampler.noise_prediction(latent, timestep, self.embedding)
            guided = eps_uncond + guidance * (eps_cond - eps_uncond)
            per_image = tf.reduce_mean(tf.square(ddim_move(latent, guided, coefs) - target),
                                       axis=[1, 2, 3])
            loss = tf.reduce_sum(per_image)  # each embedding sees only its own image's MSE
        grad = tape.gradient(loss, self.embedding)
        self.count.assign_add(1.0)
        m = beta1 * self.m + (1 - beta1) * grad
        v = beta2 * self.v + (1 - beta2) * tf.square(grad)
        step = lr / (1 - beta1 ** self.count) * m / (
            tf.sqrt(v) / tf.sqrt(1 - beta2 ** self.count) + eps)
        keep = tf.reshape(active, [-1, 1, 1])
        self.m.assign(tf.where(keep, m, self.m))
        self.v.assign(tf.where(keep, v, self.v))
        self.embedding.assign(tf.where(keep, self.embedding - step, self.embedding))
        return per_image


def null_text_optimizer(pipe, embedding_shape):
    """The pipeline's `NullTextOptimizer` for this batch shape (made and traced once)."""
    key = ("p2p.null_text", tuple(embedding_shape))
    return model_cache(pipe.diffusion_model).get_or_build(
        key, lambda: NullTextOptimizer(pipe, embedding_shape))


def check_null_text(num_inner_steps, epsilon):
    if isinstance(num_inner_steps, bool) or not isinstance(num_inner_steps, (int, np.integer)) \
            or num_inner_steps < 0:
        raise ValueError(f"num_inner_steps={num_inner_steps!r}: use an integer >= 0 (theirs: 10)")
    if not isinstance(epsilon, (int, float)) or not 0 <= epsilon < math.inf:
        raise ValueError(f"epsilon={epsilon!r}: use a finite number >= 0 (theirs: 1e-5)")


def null_text_inversion(inversion, pipe, guidance=7.5, num_inner_steps=10, epsilon=1e-5,
                        negative_prompt=None, progress=False):
    """Null-text inversion from a plain DDIM inversion (module doc).

    Args:
        inversion: `ddim_inversion(...)`'s result (its latents are the targets).
        guidance: the guidance of the generations that will use the embeddings (theirs 7.5).
        num_inner_steps: at most this many Adam updates per step (theirs 10).
        epsilon: early stop when the loss < epsilon + i * 2e-5 (theirs 1e-5).
        negative_prompt: the embedding to start from (default the empty prompt's).

    Returns:
        Inversion with uncond_embeddings (N, n, L, D), inner_steps and losses (N, n).
    """
    guidance = check_guidance(guidance)
    check_null_text(num_inner_steps, epsilon)
    steps, sampler = compiled_steps(pipe), pipe.sampler
    n = inversion.latents.shape[1]
    cond = sampler.encode(inversion.prompts)
    start = tf.repeat(sampler.encode([negative_prompt or ""]), n, axis=0)
    optimizer = null_text_optimizer(pipe, start.shape)
    optimizer.embedding.assign(start)
    latent = tf.constant(inversion.x_T)
    g = tf.constant(guidance, tf.float32)
    embeddings, inner, losses = [], np.zeros((inversion.num_steps, n), np.int64), []
    schedule = step_schedule(inversion.num_steps)
    for i, (timestep, a_t, a_prev) in enumerate(tqdm(schedule, desc="null-text inversion",
                                                     disable=not progress, leave=False)):
        coefs, t = coefficients(a_t, a_prev), tf.constant(timestep, tf.int32)
        target = tf.constant(inversion.latents[i + 1])
        eps_cond = steps["eps"](latent, t, cond)
        optimizer.reset()
        active, loss = np.ones(n, bool), np.full(n, np.nan, np.float32)
        lr = tf.constant(1e-2 * (1.0 - i / 100.0), tf.float32)
        for _ in range(num_inner_steps):
            step_loss = optimizer.update(latent, t, coefs, eps_cond, target, g, lr,
                                         tf.constant(active)).numpy()
            loss = np.where(active, step_loss, loss)
            inner[i] += active
            active &= ~(step_loss < epsilon + i * 2e-5)
            if not active.any():
                break
        embeddings.append(optimizer.embedding.numpy())
        losses.append(loss)
        latent = steps["move"](latent, t, coefs, optimizer.embedding, cond, g)
    return dataclasses.replace(inversion, guidance=guidance,
                               uncond_embeddings=np.stack(embeddings), inner_steps=inner,
                               losses=np.stack(losses))


def invert(pipe, images, prompts, num_steps=50, guidance=7.5, method="null_text",
           num_inner_steps=10, epsilon=1e-5, progress=False):
    """DDIM inversion (guidance 1), then, for method="null_text", null-text inversion at
    `guidance`. method="ddim": the plain inversion, to be generated at `guidance`."""
    if method not in ("null_text", "ddim"):
        raise ValueError(f"method={method!r}: use 'null_text' or 'ddim'")
    guidance = check_guidance(guidance)
    check_null_text(num_inner_steps, epsilon)
    plain = ddim_inversion(pipe, images, prompts, num_steps, progress=progress)
    if method == "ddim":
        return dataclasses.replace(plain, guidance=guidance)
    return null_text_inversion(plain, pipe, guidance, num_inner_steps, epsilon,
                               progress=progress)
