"""One source prompt and any number of edited prompts in ONE batched generation.

    editor = PromptToPrompt(pipe, "a trouser and a boot", ["a trouser and a bag"],
                            Replace(cross_replace_steps=0.8, self_replace_steps=0.4),
                            local_blend=LocalBlend([["boot"], ["bag"]]), num_steps=25)
    result = editor.generate(seed=0, guidance=5.0)
    result.source, result.edits     # (n, H, W, C) and (E, n, H, W, C) float in about [-1, 1]

The controllers are lens edits on the conditional half (`lens.trace(..., half="cond")`):
`*.attn2.probs` everywhere, `attn1.probs` at the layers with at most
`self_max_pixels` query positions (latent pixels / 16 by default: SD v1.4's 16x16 and 8x8 at
512 px, as the stable notebook's `16 ** 2`), and `sampler.x_next` for the local blend. The
edit functions are made once per `PromptToPrompt`, so a second `generate` reuses the
compiled step.
"""

import copy
import dataclasses

import numpy as np
import tensorflow as tf

from keras_sd_interp import lens
from keras_sd_interp.attribution import daam
from keras_sd_interp.models.sampler import check_num_steps
from keras_sd_interp.lens.tokens import Tokens
from keras_sd_interp.editing.prompt_to_prompt.controllers import Refine, Replace, Reweight
from keras_sd_interp.editing.prompt_to_prompt.local_blend import BlendState
from keras_sd_interp.editing.prompt_to_prompt.seq_aligner import (refinement_mappers,
                                                                  replacement_mappers)
from keras_sd_interp.editing.prompt_to_prompt.steps import cross_alpha, self_window
from keras_sd_interp.editing.prompt_to_prompt.words import sequence

SELF_FRACTION = 16  # self-attention injected where query positions <= latent pixels / 16


@dataclasses.dataclass
class EditResult:
    """What `PromptToPrompt.generate` returns.

    Attributes:
        images: float32 (P, n, H, W, C), source first, decoder output in about [-1, 1].
        latents: float32 (P, n, h, w, 4).
        prompts: the P prompts (source first).
        daam: the run's `daam.DAAMTrace` when `generate(daam_options=...)` asked for one: heat maps
            of image k = prompt k // n, seed k % n (`result.daam.compute_heat_maps(image=k)`).
    """

    images: np.ndarray
    latents: np.ndarray
    prompts: list
    daam: object = None

    @property
    def source(self):
        return self.images[0]

    @property
    def edits(self):
        return self.images[1:]

    def uint8(self):
        return np.clip((self.images + 1) / 2 * 255, 0, 255).astype("uint8")


def check_request(source, edits, controller, local_blend=None, num_steps=50):
    """Every check that needs no model: prompts, words, step fractions, the blend.

    Returns the edits as a list. Raises ValueError naming the bad value."""
    from keras_sd_interp.editing.prompt_to_prompt.controllers import Controller

    if not isinstance(source, str) or not source:
        raise ValueError(f"source={source!r}: give a non-empty prompt")
    edits = [edits] if isinstance(edits, str) else list(edits)
    if not edits or not all(isinstance(e, str) and e for e in edits):
        raise ValueError(f"edits={edits!r}: give one or more non-empty edited prompts")
    if not isinstance(controller, Controller):
        raise ValueError(f"controller={controller!r}: use Replace(), Refine() or Reweight()")
    controller.check(source, edits)
    if local_blend is not None:
        local_blend.check([source] + edits)
    check_num_steps(num_steps)
    return edits


def _prompt_major(tensor, num_prompts):
    return tf.reshape(tensor, [num_prompts, -1, *tensor.shape[1:]])


class PromptToPrompt:
    """A prompt-to-prompt edit of one source prompt into E edited prompts, n images each.

    Args:
        pipe: a pipeline (`load_pipeline("tiny")`, `load_pipeline("sd14", ...)`).
        source: the source prompt; edits: a list of E edited prompts.
        controller: `Replace`, `Refine` or `Reweight` (with their step windows).
        local_blend: None or a `LocalBlend`.
        num_steps: DDIM steps (the step tables are made for this count).
        images_per_prompt: n (each edit starts from the same noise as its source image).
        self_max_pixels: self-attention is injected at layers with at most this many query
            positions (default latent pixels / 16).
    """

    def __init__(self, pipe, source, edits, controller, local_blend=None, num_steps=50,
                 images_per_prompt=1, self_max_pixels=None):
        self.edits = check_request(source, edits, controller, local_blend, num_steps)
        self.pipe, self.source, self.controller = pipe, source, controller
        self.prompts = [source] + self.edits
        self.num_steps, self.num_images = num_steps, int(images_per_prompt)
        self.tokens = Tokens(pipe)
        self.local_blend = local_blend
        cross_map = controller.cross_map(self.tokens, source, self.edits)
        alpha = cross_alpha(self.tokens, self.edits, controller.cross_replace_steps, num_steps)
        self.plan = self._plan(self.prompts, alpha, local_blend)
        self.window = self_window(controller.self_replace_steps, num_steps)
        shapes = lens.list_sites(pipe)
        self.latent_hw = tuple(shapes["sampler.x_t"][:2])
        latent_pixels = self.latent_hw[0] * self.latent_hw[1]
        self.self_max_pixels = self_max_pixels or latent_pixels // SELF_FRACTION
        self.blend = None if local_blend is None else self._blend_state(local_blend, shapes)
        self.lens_edits = {"*.attn2.probs": self._cross_edit(cross_map, alpha)}
        if self.window[1] > self.window[0]:
            for name, shape in shapes.items():
                if name.endswith(".attn1.probs") and shape[1] <= self.self_max_pixels:
                    self.lens_edits[name] = self._self_edit()
        if self.blend is not None:
            self.lens_edits["sampler.x_next"] = self.blend.blend_latent

    def _plan(self, prompts, alpha, local_blend):
        """What the compiled edits depend on: token maps, step tables, blend weights."""
        tokens, source, edits = self.tokens, prompts[0], prompts[1:]
        arrays = [alpha, np.array(sequence(tokens, source))]
        if isinstance(self.controller, (Replace, Refine)) or \
                getattr(self.controller, "base", None) is not None:
            base = self.controller if isinstance(self.controller, (Replace, Refine)) \
                else self.controller.base
            arrays += list(replacement_mappers(tokens, source, edits) if isinstance(base, Replace)
                           else refinement_mappers(tokens, source, edits))
        if isinstance(self.controller, Reweight):
            arrays.append(self.controller.equalizer(tokens, edits))
        if local_blend is not None:
            arrays.append(local_blend.word_weights(tokens, prompts))
        return arrays

    def for_prompts(self, source, edits, local_blend=None):
        """The same editor for other prompts of the same token structure (same maps, tables
        and blend positions: e.g. other items in tiny's "a X and a Y"), sharing the compiled
        step; `local_blend`: the blend for the new prompts (default: this editor's). Raises
        ValueError when the structure differs (make a new PromptToPrompt)."""
        local_blend = local_blend or self.local_blend
        if (local_blend is None) != (self.local_blend is None):
            raise ValueError("for_prompts: a blend only for an editor made with one")
        edits = check_request(source, edits, self.controller, local_blend, self.num_steps)
        if len(edits) != len(self.edits):
            raise ValueError(f"{len(edits)} edited prompts; this editor was made for "
                             f"{len(self.edits)}")
        alpha = cross_alpha(self.tokens, edits, self.controller.cross_replace_steps,
                            self.num_steps)
        plan = self._plan([source] + edits, alpha, local_blend)
        if any(a.shape != b.shape or not np.array_equal(a, b)
               for a, b in zip(plan[:1] + plan[2:], self.plan[:1] + self.plan[2:])):
            raise ValueError(f"{[source] + edits} do not share the token maps of "
                             f"{self.prompts}: make a new PromptToPrompt")
        other = copy.copy(self)
        other.source, other.edits, other.prompts = source, edits, [source] + edits
        other.local_blend = local_blend
        return other

    def _blend_state(self, local_blend, shapes):
        wanted = {self.latent_hw[0] * self.latent_hw[1] // f ** 2 for f in local_blend.factors}
        chosen = {name: shape[1] for name, shape in shapes.items()
                  if name.endswith(".attn2.probs") and shape[1] in wanted}
        if not chosen:
            raise ValueError(f"LocalBlend factors={local_blend.factors}: no cross-attention "
                             f"layer at those resolutions of latent {self.latent_hw}")
        weights = local_blend.word_weights(self.tokens, self.prompts)
        start = int(local_blend.start_blend * self.num_steps)
        return BlendState(local_blend, weights, chosen, self.latent_hw, self.num_images, start)

    def _cross_edit(self, cross_map, alpha):
        """The edit at every `attn2.probs` (cond half, (P * n, heads, Q, L))."""
        alpha = tf.constant(alpha[:, :, None, None, None, :])   # (steps, E, 1, 1, 1, L)
        num_prompts = len(self.prompts)

        def edit(probs, where):
            per_prompt = _prompt_major(probs, num_prompts)
            base, own = per_prompt[0], per_prompt[1:]
            weight = tf.gather(alpha, where.step)
            edited = cross_map(base, own) * weight + (1.0 - weight) * own
            out = tf.reshape(tf.concat([per_prompt[:1], edited], 0), tf.shape(probs))
            if self.blend is not None and where.site in self.blend.sites:
                self.blend.collect(out)
            return out

        return edit

    def _self_edit(self):
        """The edit at a low-resolution `attn1.probs`: the source's map inside the window."""
        first, end = self.window
        num_prompts = len(self.prompts)

        def edit(probs, where):
            per_prompt = _prompt_major(probs, num_prompts)
            inside = tf.logical_and(where.step >= first, where.step < end)
            injected = tf.broadcast_to(per_prompt[:1], tf.shape(per_prompt))
            return tf.reshape(tf.where(inside, injected, per_prompt), tf.shape(probs))

        return edit

    def noise(self, seed=None):
        """The initial latent: n draws for `seed`, the same for every prompt (P * n, h, w, 4)."""
        noise = self.pipe.sampler.initial_noise(self.num_images, seed)
        return tf.tile(noise, [len(self.prompts), 1, 1, 1])

    def generate(self, seed=None, guidance=7.5, diffusion_noise=None, negative_prompt=None,
                 progress=False, uncond_embeddings=None, daam_options=None):
        """Runs the source and every edit in one batched generation.

        Args:
            seed: draws the n initial latents (shared by all prompts); or diffusion_noise:
                (n, h, w, 4) given directly (e.g. an inversion's x_T).
            guidance: classifier-free guidance scale.
            uncond_embeddings: None, or (num_steps, n, L, D): null-text inversion's per-step
                unconditional embeddings (`Inversion.generate_args()`), shared by every prompt.
            daam_options: None, True or a dict of `daam.trace` options (per_step,
                text_rollout, ...): record this run's cross-attention (after the edits) for DAAM heat maps; the
                trace comes back as `result.daam`.

        Returns:
            EditResult (images (P, n, H, W, C), latents, prompts; daam).
        """
        if diffusion_noise is None:
            noise = self.noise(seed)
        else:
            noise = tf.tile(tf.convert_to_tensor(diffusion_noise, tf.float32),
                            [len(self.prompts), 1, 1, 1])
        if uncond_embeddings is not None:
            uncond_embeddings = tf.tile(tf.convert_to_tensor(uncond_embeddings, tf.float32),
                                        [1, len(self.prompts), 1, 1])
        if self.blend is not None:
            self.blend.reset()
        tracer = self._tracer(daam_options)
        with tracer:
            generation = self.pipe.sampler.generate(
                self.prompts, negative_prompt=negative_prompt, batch_size=self.num_images,
                num_steps=self.num_steps, unconditional_guidance_scale=guidance,
                diffusion_noise=noise, progress=progress, uncond_contexts=uncond_embeddings)
        shape = (len(self.prompts), self.num_images)
        return EditResult(generation.images.reshape(shape + generation.images.shape[1:]),
                          generation.latents.reshape(shape + generation.latents.shape[1:]),
                          list(self.prompts), tracer if daam_options is not None else None)

    def _tracer(self, daam_options):
        """The trace the run goes under: the lens edits, or a DAAM trace carrying them."""
        if daam_options is None:
            return lens.trace(self.pipe, edits=self.lens_edits, half="cond")
        options = {} if daam_options is True else dict(daam_options)
        return daam.trace(self.pipe, edits=self.lens_edits, **options)
