"""Local blend: keep the source's latent outside the region of the chosen words.

    LocalBlend(words=[["boot"], ["bag"]], threshold=0.3, start_blend=0.2)

One entry of `words` per prompt (source first): a word or a list of words. At every step the
cross-attention maps (after the controller's edit, as theirs stores them) of the layers at the
middle resolutions (latent side / 2 and / 4: SD v1.4's 32x32 and 16x16 at 512 px, tiny's 4x8
and 2x4) are averaged over heads and layers on the finest of those grids and summed over steps.
After the step, per image: the chosen words' tokens summed, 3x3 max-pooled, upsampled (nearest)
to the latent, divided by its maximum and thresholded; OR-ed with the source's mask. From step
int(start_blend * num_steps) on, the latent outside the mask is the source's.
(Theirs at 512 px reads only the 16x16 layers: `factors=(4,)`.)

`normalize="max"` divides by the map's maximum, as theirs; `"minmax"` maps its minimum to 0
and its maximum to 1 first (as DAAM does), for a model whose maps never fall near zero (on
the tiny model bundled before issue 21 a word's summed map stayed above a third of its peak
everywhere, so 0.3 of the maximum was the whole latent; docs/prompt_to_prompt.md).

`positions` (one list of token positions per prompt) replaces `words` for a model whose item
is carried by other tokens than its word (that earlier tiny model read its right item from the
last padding token; docs/daam.md).
"""

import dataclasses
import math
import numbers

import numpy as np
import tensorflow as tf

from keras_sd_interp.editing.prompt_to_prompt.steps import check_bounds
from keras_sd_interp.editing.prompt_to_prompt.words import check_word_in, word_positions

POOL = 3
NORMALIZE = ("max", "minmax")


@dataclasses.dataclass(frozen=True)
class LocalBlend:
    """Args: words (one entry per prompt, source first), threshold, start_blend (a fraction
    of the steps), factors (which resolutions: latent side / factor), positions (instead of
    words), normalize ("max", theirs, or "minmax")."""

    words: tuple = ()
    threshold: float = 0.3
    start_blend: float = 0.2
    factors: tuple = (2, 4)
    positions: tuple = None
    normalize: str = "max"

    def prompt_words(self, num_prompts):
        words = list(self.words)
        if len(words) != num_prompts:
            raise ValueError(f"LocalBlend: {len(words)} entries of words for {num_prompts} "
                             "prompts; give one (a word or a list of words) per prompt, the "
                             "source first")
        return [[entry] if isinstance(entry, str) else list(entry) for entry in words]

    def check(self, prompts):
        if self.positions is not None:
            if len(self.positions) != len(prompts) or not all(
                    entry and all(isinstance(p, int) and p >= 1 for p in entry)
                    for entry in self.positions):
                raise ValueError(f"LocalBlend positions={self.positions!r}: give one non-empty "
                                 f"list of token positions (>= 1) per prompt ({len(prompts)})")
        else:
            for prompt, words in zip(prompts, self.prompt_words(len(prompts))):
                for word in words:
                    check_word_in(prompt, word, "LocalBlend")
        if not isinstance(self.threshold, numbers.Real) or not math.isfinite(self.threshold):
            raise ValueError(f"LocalBlend threshold={self.threshold!r}: give a finite number "
                             "(0.3 as theirs; masks are normalised to a maximum of 1)")
        check_bounds(self.start_blend, "LocalBlend start_blend")
        if self.normalize not in NORMALIZE:
            raise ValueError(f"LocalBlend normalize={self.normalize!r}: choose one of "
                             f"{NORMALIZE} ('max' is theirs)")
        if not self.factors or any(isinstance(f, bool) or not isinstance(f, int) or f < 1
                                   for f in self.factors):
            raise ValueError(f"LocalBlend factors={self.factors!r}: give integers >= 1 "
                             "(latent side / factor is a layer's resolution)")

    def word_weights(self, tokens, prompts):
        """(P, L) float32: 1 at the tokens of each prompt's chosen words."""
        weights = np.zeros((len(prompts), tokens.length), np.float32)
        if self.positions is not None:
            for p, entry in enumerate(self.positions):
                if max(entry) >= tokens.length:
                    raise ValueError(f"LocalBlend positions {entry}: this model's tokens are "
                                     f"0..{tokens.length - 1}")
                weights[p, list(entry)] = 1.0
            return weights
        for p, (prompt, words) in enumerate(zip(prompts, self.prompt_words(len(prompts)))):
            for word in words:
                weights[p, word_positions(tokens, prompt, word)] = 1.0
        return weights


def grid_of(pixels, latent_hw):
    """(h, w) of a layer with `pixels` query positions in a U-Net of latent (h0, w0)."""
    factor = math.isqrt(latent_hw[0] * latent_hw[1] // pixels)
    return latent_hw[0] // factor, latent_hw[1] // factor


def blend_mask(summed_maps, word_weights, latent_hw, threshold, num_prompts, normalize="max"):
    """The blend mask of every image.

    Args:
        summed_maps: (P * n, hb, wb, L) cross-attention summed over steps.
        word_weights: (P * n, L) the chosen tokens of each image's prompt.
        latent_hw: (h0, w0).
        threshold: on the maps normalised to a maximum of 1 (normalize "max") or to 0..1
            (normalize "minmax").
        num_prompts: P (images are prompt-major).

    Returns:
        bool (P * n, h0, w0, 1): the edit's own latent is kept inside.
    """
    maps = tf.einsum("bhwl,bl->bhw", summed_maps, word_weights)[..., None]
    maps = tf.nn.max_pool2d(maps, POOL, 1, "SAME")
    maps = tf.image.resize(maps, latent_hw, method="nearest")
    peak = tf.reduce_max(maps, axis=[1, 2, 3], keepdims=True)
    if normalize == "minmax":
        low = tf.reduce_min(maps, axis=[1, 2, 3], keepdims=True)
        maps, peak = maps - low, peak - low
    mask = maps / tf.maximum(peak, 1e-30) > threshold
    per_prompt = tf.reshape(mask, [num_prompts, -1, *latent_hw, 1])
    return tf.reshape(tf.logical_or(per_prompt, per_prompt[:1]), tf.shape(mask))


class BlendState:
    """The running sum of one generation's blend maps, and the two lens edits that fill it
    (`collect`, at each chosen cross-attention site) and use it (`blend`, at `sampler.x_next`).

    Args:
        blend: the LocalBlend.
        word_weights: (P, L) from `LocalBlend.word_weights`.
        site_pixels: {cross-attention site: query positions} of the chosen layers.
        latent_hw: (h0, w0); num_images: n per prompt; start_step: the first blended step.
    """

    def __init__(self, blend, word_weights, site_pixels, latent_hw, num_images, start_step):
        self.blend, self.latent_hw, self.start_step = blend, tuple(latent_hw), start_step
        self.num_prompts = word_weights.shape[0]
        self.weights = tf.constant(np.repeat(word_weights, num_images, axis=0))
        self.grid = grid_of(max(site_pixels.values()), self.latent_hw)
        self.sites = sorted(site_pixels)
        shape = (self.num_prompts * num_images, *self.grid, word_weights.shape[1])
        self.summed = tf.Variable(tf.zeros(shape), trainable=False)
        self.pending = []

    def reset(self):
        self.summed.assign(tf.zeros_like(self.summed))

    def collect(self, probs):
        """probs: (P * n, heads, Q, L) edited cross-attention of one layer (cond half)."""
        grid = grid_of(probs.shape[2], self.latent_hw)
        maps = tf.reshape(tf.reduce_mean(probs, axis=1), [-1, *grid, probs.shape[-1]])
        self.pending.append(tf.image.resize(maps, self.grid, method="nearest"))

    def blend_latent(self, latent, where):
        """latent (P * n, h0, w0, 4) leaving the step -> blended latent."""
        step_maps = tf.add_n(self.pending) / len(self.pending)
        self.pending = []
        summed = self.summed.assign_add(step_maps)
        mask = blend_mask(summed, self.weights, self.latent_hw, self.blend.threshold,
                          self.num_prompts, self.blend.normalize)
        per_prompt = tf.reshape(latent, [self.num_prompts, -1, *latent.shape[1:]])
        source = tf.reshape(tf.broadcast_to(per_prompt[:1], tf.shape(per_prompt)),
                            tf.shape(latent))
        blended = tf.where(mask, latent, source)
        return tf.where(where.step >= self.start_step, blended, latent)
