"""The toolkit's own sampler: DDIM with classifier-free guidance on keras-cv's schedule.

keras-cv's `generate_image` calls `predict_on_batch` twice per step (unconditional, then
conditional) in a Python loop where nobody can see the step. This sampler does the same
arithmetic (keras-cv's `_ALPHAS_CUMPROD`, its timestep spacing, its guidance and DDIM update,
in the same order), so with nothing hooked its images equal keras-cv's; but

- one compiled step (`tf.function`) per denoising step runs the U-Net on the 2B batch
  [uncond; cond], as diffusers does, or as two calls, as keras-cv (`batched_guidance`);
- every step knows its index, its timestep and which half each batch item belongs to, and a
  `lens.trace(...)` around a generation reads or edits any site there (see `lens/tracing.py`;
  the sampler only asks `hook_points.active_trace(pipe)`, so it never imports the lens);
- a list of different prompts generates in one call.

    sampler = Sampler(pipe)
    result = sampler.generate(["a sneaker and a bag", "a dress"], num_steps=25, seed=0)
    result.images  # (2, 32, 64, 1) float32 in [-1, 1] (decoder output, not clipped)

Sites of the sampler itself (one per step, whole batch, no half): `sampler.x_t` (the latent
entering the step), `sampler.eps` (the guided noise estimate), `sampler.x0` (predicted x0),
`sampler.x_next` (the latent leaving the step: prompt-to-prompt's local blend edits it).
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf
from keras_cv.src.models.stable_diffusion.constants import _ALPHAS_CUMPROD
from tqdm import tqdm

from keras_sd_interp import hook_points
from keras_sd_interp.models.layers import timestep_embedding

NUM_TRAIN_TIMESTEPS = 1000
HALVES = ("uncond", "cond")
SAMPLER_SITES = ("sampler.x_t", "sampler.eps", "sampler.x0", "sampler.x_next")


def ddim_timesteps(num_steps):
    """keras-cv's spacing: int array (num_steps,), ascending 0..999; sampling runs it backwards.

    Step i of a generation (i = 0 is the first, noisiest step) uses `timesteps[num_steps-1-i]`.
    """
    check_num_steps(num_steps)
    ratio = (NUM_TRAIN_TIMESTEPS - 1) / (num_steps - 1) if num_steps > 1 else NUM_TRAIN_TIMESTEPS
    return (np.arange(0, num_steps) * ratio).round().astype(np.int64)


def check_num_steps(num_steps):
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) \
            or not 1 <= num_steps <= NUM_TRAIN_TIMESTEPS:
        raise ValueError(f"num_steps={num_steps!r}: use an integer in 1..{NUM_TRAIN_TIMESTEPS}")
    return int(num_steps)


def step_schedule(num_steps):
    """Per step, in sampling order: list of (timestep, a_t, a_prev) as keras-cv computes them."""
    timesteps = ddim_timesteps(num_steps)
    alphas = [_ALPHAS_CUMPROD[t] for t in timesteps]
    alphas_prev = [1.0] + alphas[:-1]
    return [(int(timesteps[i]), alphas[i], alphas_prev[i]) for i in reversed(range(num_steps))]


@dataclasses.dataclass
class Generation:
    """What `Sampler.generate` returns.

    Attributes:
        images: float32 (n, H, W, C), the decoder's output in about [-1, 1], not clipped.
        latents: float32 (n, h, w, 4), the final latent.
        prompts: the n prompts, one per image (prompt-major: p0, p0, ..., p1, ...).
        timesteps: int list, the timestep of each step in sampling order.
    """

    images: np.ndarray
    latents: np.ndarray
    prompts: list
    timesteps: list

    def uint8(self):
        """Images as keras-cv's `text_to_image` returns them: uint8 (n, H, W, C)."""
        return np.clip((self.images + 1) / 2 * 255, 0, 255).astype("uint8")


def _check_prompts(prompt):
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, (list, tuple)) or not prompts or \
            not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"prompt={prompt!r}: give a string or a non-empty list of strings")
    return list(prompts)


def _check_guidance(guidance):
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float, np.floating)) \
            or not math.isfinite(guidance):
        raise ValueError(f"unconditional_guidance_scale={guidance!r}: use a finite number "
                         "(1 is no guidance; 7.5 is keras-cv's default)")
    return float(guidance)


check_guidance = _check_guidance


class Sampler:
    """DDIM with classifier-free guidance for a pipeline (`TinyPipeline`, `SD14Pipeline`).

    Args:
        pipe: a pipeline with `tokens(prompts)`, `text_encoder`, `diffusion_model`, `decoder`,
            `_get_pos_ids()`, `_get_initial_diffusion_noise(n, seed)` and a `config`.
        batched_guidance: run both halves as one batch of 2n (True) or as two calls (False).
            Default: batched, except the full-size U-Net on a CPU, where one batch of 2 was
            measured 1.25x slower than two calls (sd14 at 256x256, 2 cores; the tiny model is
            overhead-bound and gains from one call).
        jit_compile: XLA-compile the step (off by default: then the U-Net runs as keras-cv's
            `predict_on_batch` runs it, and the images match keras-cv's bit for bit).
    """

    def __init__(self, pipe, batched_guidance=None, jit_compile=False):
        self.pipe = pipe
        if batched_guidance is None:
            on_cpu = not tf.config.list_physical_devices("GPU")
            batched_guidance = not (on_cpu and pipe.config.name == "sd14")
        self.batched_guidance = batched_guidance
        self.jit_compile = jit_compile
        self._plain_step = self._compiled_step()
        self._decode = tf.function(lambda latent: pipe.decoder(latent), jit_compile=jit_compile)
        self._hooked_steps = {}

    # -- pieces ---------------------------------------------------------------------------
    def _encode(self, tokens):
        positions = tf.repeat(self.pipe._get_pos_ids(), tf.shape(tokens)[0], axis=0)
        return self.pipe.text_encoder({"tokens": tokens, "positions": positions})

    def encode(self, prompts, half="cond", hooks=None):
        """Prompts (list of n str) -> contexts (n, L, D). `hooks`: a trace's text hooks."""
        tokens = tf.constant(self.pipe.tokens(prompts), tf.int32)
        if hooks is None:
            return self._encode(tokens)  # eager, as keras-cv's tiny path; once per generation
        with hook_points.active(hooks), hook_points.located(half=half, step=None, timestep=None):
            return self._encode(tokens)

    def _unet(self, latent, t_emb, context):
        return self.pipe.diffusion_model([latent, t_emb, context])

    def noise_prediction(self, latent, timestep, context):
        """The U-Net's noise estimate for one context, differentiable, unguided: latent
        (n, h, w, 4), timestep int32 scalar, context (n, L, D) -> eps (n, h, w, 4). Inside a
        trace it reports through the U-Net's sites like any call (DDIM and null-text
        inversion use it outside one)."""
        n = tf.shape(latent)[0]
        t_emb = timestep_embedding(tf.fill([n], timestep), self.pipe.config.time_embedding_dim)
        return self._unet(latent, t_emb, context)

    def _compiled_step(self):
        """The plain compiled step (no hooks). Not XLA by default: then the U-Net runs as
        keras-cv's `predict_on_batch` runs it, and the images match keras-cv's."""
        return tf.function(self._denoise, jit_compile=self.jit_compile)

    def _denoise(self, latent, timestep, coefficients, uncond_context, context, guidance):
        """One DDIM step with guidance. latent (n, h, w, 4); timestep int32 scalar; coefficients float32 (4,): sqrt(a_t),
        sqrt(1-a_t), sqrt(a_prev), sqrt(1-a_prev); contexts (n, L, D); guidance float32 scalar.
        Returns the next latent (n, h, w, 4)."""
        n = tf.shape(latent)[0]
        latent = hook_points.site("sampler.x_t", latent)
        t_emb = timestep_embedding(tf.fill([n], timestep), self.pipe.config.time_embedding_dim)
        if self.batched_guidance:
            with hook_points.located(half=None, halves=HALVES, half_size=latent.shape[0]):
                both = self._unet(tf.concat([latent, latent], 0), tf.concat([t_emb, t_emb], 0),
                            tf.concat([uncond_context, context], 0))
            eps_uncond, eps_cond = tf.split(both, 2, axis=0)
        else:
            with hook_points.located(half="uncond", halves=None):
                eps_uncond = self._unet(latent, t_emb, uncond_context)
            with hook_points.located(half="cond", halves=None):
                eps_cond = self._unet(latent, t_emb, context)
        eps = hook_points.site("sampler.eps", eps_uncond + guidance * (eps_cond - eps_uncond))
        sqrt_a_t, sqrt_one_minus_a_t, sqrt_a_prev, sqrt_one_minus_a_prev = tf.unstack(coefficients)
        pred_x0 = hook_points.site("sampler.x0", (latent - sqrt_one_minus_a_t * eps) / sqrt_a_t)
        next_latent = eps * sqrt_one_minus_a_prev + sqrt_a_prev * pred_x0
        return hook_points.site("sampler.x_next", next_latent)

    # -- generation -----------------------------------------------------------------------
    def initial_noise(self, n, seed=None):
        """keras-cv's initial latent for n images: (n, h, w, 4) float32."""
        return tf.convert_to_tensor(self.pipe._get_initial_diffusion_noise(n, seed))

    def generate(self, prompt, negative_prompt=None, batch_size=1, num_steps=50,
                 unconditional_guidance_scale=7.5, diffusion_noise=None, seed=None,
                 progress=False, uncond_contexts=None):
        """Generates `batch_size` images for each prompt.

        Args:
            prompt: a string or a list of P strings (one run for all of them).
            negative_prompt: string for the unconditional half (default: the empty prompt).
            batch_size: images per prompt (n = P * batch_size images, prompt-major).
            num_steps, unconditional_guidance_scale, seed: as keras-cv's `text_to_image`.
            diffusion_noise: optional initial latent (n, h, w, 4) instead of `seed`.
            progress: show a tqdm bar over the steps.
            uncond_contexts: optional float (num_steps, n or 1, L, D): the unconditional
                context of each step instead of the encoded negative prompt (null-text
                inversion's per-step embeddings; 1 is shared by every image).

        Returns:
            Generation (float images in about [-1, 1], final latents, prompts, timesteps).
            Inside `lens.trace(pipe, ...)`, the trace records and edits along the way.
        """
        prompts = _check_prompts(prompt)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r}: use an integer >= 1")
        guidance = _check_guidance(unconditional_guidance_scale)
        schedule = step_schedule(num_steps)
        if diffusion_noise is not None and seed is not None:
            raise ValueError("pass diffusion_noise or seed, not both (seed draws the noise)")
        for model in (self.pipe.text_encoder, self.pipe.diffusion_model, self.pipe.decoder):
            del model  # built (and weights loaded) eagerly, never inside a compiled function
        image_prompts = [p for p in prompts for _ in range(batch_size)]
        n = len(image_prompts)
        tracer = hook_points.active_trace(self.pipe)
        if tracer is not None:
            tracer.begin(self, num_steps, n, [t for t, _, _ in schedule])

        text_hooks = tracer.text_hooks() if tracer is not None else None
        unique_context = self.encode(prompts, "cond", text_hooks)
        context = tf.repeat(unique_context, batch_size, axis=0)
        if uncond_contexts is None:
            uncond_prompt = "" if negative_prompt is None else negative_prompt
            uncond_context = tf.repeat(self.encode([uncond_prompt], "uncond", text_hooks), n,
                                       axis=0)
            per_step = [uncond_context] * num_steps
        else:
            per_step = self._per_step_contexts(uncond_contexts, negative_prompt, num_steps, n,
                                               tuple(context.shape[1:]))
        if diffusion_noise is not None:
            latent = tf.convert_to_tensor(diffusion_noise, tf.float32)
            if latent.shape[0] != n:
                raise ValueError(f"diffusion_noise has {latent.shape[0]} items; this call "
                                 f"makes {n} images ({len(prompts)} prompts x {batch_size})")
        else:
            latent = self.initial_noise(n, seed)

        guidance = tf.constant(guidance, tf.float32)
        for step, (timestep, a_t, a_prev) in enumerate(
                tqdm(schedule, desc="denoising", disable=not progress, leave=False)):
            coefficients = tf.constant([math.sqrt(a_t), math.sqrt(1 - a_t), math.sqrt(a_prev),
                                        math.sqrt(1.0 - a_prev)], tf.float32)
            args = (latent, tf.constant(timestep, tf.int32), coefficients, per_step[step],
                    context, guidance)
            if tracer is not None and tracer.hooks_step(step):
                latent = tracer.run_step(step, args)
            else:
                latent = self._plain_step(*args)
        images = self._decode(latent)
        result = Generation(images.numpy(), latent.numpy(), image_prompts,
                            [t for t, _, _ in schedule])
        if tracer is not None:
            tracer.end(result)
        return result

    @staticmethod
    def _per_step_contexts(uncond_contexts, negative_prompt, num_steps, n, context_shape):
        """uncond_contexts (num_steps, n or 1, L, D) -> num_steps tensors (n, L, D)."""
        if negative_prompt is not None:
            raise ValueError("pass negative_prompt or uncond_contexts, not both")
        contexts = tf.convert_to_tensor(uncond_contexts, tf.float32)
        wanted = (num_steps, n, *context_shape)
        if contexts.shape.rank != 4 or contexts.shape[0] != num_steps \
                or contexts.shape[1] not in (1, n) or tuple(contexts.shape[2:]) != context_shape:
            raise ValueError(f"uncond_contexts has shape {tuple(contexts.shape)}; this call needs "
                             f"{wanted} (or {num_steps}, 1, ...): one context per step")
        return [tf.broadcast_to(c, (n, *context_shape)) for c in tf.unstack(contexts)]

    def hooked_step(self, key, hook_context):
        """A compiled step traced with `hook_context` on the site stack; cached under `key`.

        The returned function takes (step, feeds, *step_args) and returns
        (next latent, dict of recorded tensors) — see `trace.StepHooks`.
        """
        if key not in self._hooked_steps:
            def step_fn(step, feeds, *args):
                with hook_points.active(hook_context), hook_points.located(step=step, timestep=args[1]):
                    hook_context.start(feeds)
                    latent = self._denoise(*args)
                    return latent, hook_context.finish()

            self._hooked_steps[key] = tf.function(step_fn, jit_compile=self.jit_compile)
        return self._hooked_steps[key]
