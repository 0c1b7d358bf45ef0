"""The DAAM trace: a `with` block around the user's own generation that records the
cross-attention through `lens.trace`, and computes `HeatMaps` from the records afterwards.

Without per_step / open_vocabulary the lens keeps one streaming sum per layer
(`reduce="sum"`); with them it keeps every step. Recording is read-only: the images are
bit-identical to those made with no trace (tested).
"""

import numpy as np

from keras_sd_interp import lens
from keras_sd_interp.attribution.daam import open_vocabulary, self_attention
from keras_sd_interp.attribution.daam.arrays import (aggregate, attention_rollout,
                                                     group_weights, map_grid)
from keras_sd_interp.attribution.daam.heat_maps import HeatMaps
from keras_sd_interp.lens.tokens import Tokens, prompt_words
from keras_sd_interp.lens.names import NUM_TRANSFORMERS, transformer_site

EXCLUDED_FACTOR = 8  # maps at 1/8 of the latent are left out by default, as in DAAM


def check_indices(kind, values, size):
    """Indices into 0..size-1 (layers or heads); None -> None. Errors name the valid range."""
    if values is None:
        return None
    values = [values] if isinstance(values, (int, np.integer)) else list(values)
    if not values:
        raise ValueError(f"empty {kind} selection: give indices in 0..{size - 1}")
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 0 <= value < size:
            raise ValueError(f"{kind} {value!r} out of range: {kind}s are 0..{size - 1}")
    return sorted({int(v) for v in values})


class DAAMTrace:
    """Records the cross-attention of one generation (any number of prompts) and computes
    DAAM maps from it. Use as a `with` block around `pipe.sampler.generate(...)` or
    `pipe.text_to_image(...)`; see the package docstring.

    Args:
        pipe: a pipeline (`load_pipeline("tiny")`, `load_pipeline("sd14", ...)`).
        per_step: keep every step's maps (needed by `per_step`, and `steps=` at compute time).
        open_vocabulary: also keep attn2.q and attn2.k of every step (OVAM maps).
        self_attention: False, True (every layer) or layer indices: keep attn1.probs (summed).
            On SD v1.4 at 512 px a 64x64 layer's self-attention is 0.5 GB: pick coarse layers.
        steps: record only these step indices (a list or range; None: all).
        text_rollout: also record the text encoder's self-attention and give each word the
            maps of the tokens that carry it (package docstring); the attribute `text_rollout`
            can be switched off and on after the run to compare.
        edits: lens edits the run goes under (`lens.trace(edits=...)`, conditional half), so
            the maps are those of an edited run (prompt-to-prompt's daam_options).
    """

    def __init__(self, pipe, per_step=False, open_vocabulary=False, self_attention=False,
                 steps=None, text_rollout=False, edits=None):
        self.pipe = pipe
        self.tokens = Tokens(pipe)
        self.num_heads = pipe.config.num_heads
        self.per_step_kept = bool(per_step or open_vocabulary)
        self.open_vocabulary = bool(open_vocabulary)
        if self_attention is True:
            self.self_layers = list(range(NUM_TRANSFORMERS))
        elif self_attention:
            self.self_layers = self.check_layers(self_attention)
        else:
            self.self_layers = []
        record = ["*.attn2.probs"]
        if open_vocabulary:
            record += ["*.attn2.q", "*.attn2.k"]
        record += [self.site(i, "attn1.probs") for i in self.self_layers]
        self.text_rollout = self.rollout_recorded = bool(text_rollout)
        self.text_sites = [s for s in lens.list_sites(pipe)
                           if s.startswith("text.") and s.endswith(".attn.probs")]
        if text_rollout:
            if not self.text_sites:
                raise ValueError("text_rollout needs a text encoder with attention sites "
                                 "(tiny and sd14 have them)")
            record += self.text_sites
        self.trace = lens.trace(pipe, record=record, steps=steps, half="cond", edits=edits,
                                reduce=None if self.per_step_kept else "sum")
        factor = pipe.config.latent_factor
        self.image_hw = (pipe.img_height, pipe.img_width)
        self.latent_hw = (pipe.img_height // factor, pipe.img_width // factor)

    def __enter__(self):
        self.trace.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.trace.__exit__(*exc_info)

    # -- what was recorded ----------------------------------------------------------------
    @property
    def generation(self):
        if self.trace.generation is None:
            raise RuntimeError("no generation ran inside this DAAM trace")
        return self.trace.generation

    @property
    def prompts(self):
        return self.generation.prompts

    @property
    def steps(self):
        return list(self.trace.steps)

    def memory_bytes(self):
        return self.trace.memory_bytes()

    @staticmethod
    def site(layer, kind="attn2.probs"):
        """The lens site of spatial transformer `layer`: "spatial_transformer_3.attn2.probs"."""
        return transformer_site(layer, kind)

    def summed(self, site, image, positions=None):
        """A site's record for one image, summed over the (selected) steps."""
        value = self.trace[site]
        if self.per_step_kept:
            value = value[:, image] if positions is None else value[positions, image]
            return value.sum(0)
        return value[image]

    # -- selections (checked; errors name what is valid) ----------------------------------
    def check_image(self, image):
        n = len(self.prompts)
        if isinstance(image, bool) or not isinstance(image, (int, np.integer)) \
                or not 0 <= image < n:
            raise ValueError(f"image {image!r} out of range: this generation has images 0..{n - 1}")
        return int(image)

    def check_layers(self, layers):
        return check_indices("layer", layers, NUM_TRANSFORMERS)

    def select_heads(self, heads=None):
        """Head indices, checked; None -> every head."""
        return check_indices("head", heads, self.num_heads) or list(range(self.num_heads))

    def layer_grids(self):
        """(h, w) of each layer's map, in layer order."""
        return [map_grid(self.trace[self.site(i)].shape[-2], self.latent_hw)[:2]
                for i in range(NUM_TRANSFORMERS)]

    def default_layers(self):
        """Every layer except those at 1/8 of the latent (DAAM leaves SD's 8x8 maps out)."""
        return [i for i in range(NUM_TRANSFORMERS)
                if map_grid(self.trace[self.site(i)].shape[-2], self.latent_hw)[2]
                < EXCLUDED_FACTOR]

    def select_layers(self, layers=None, resolutions=None):
        """Layer indices from a layer list and/or a list of map sizes (h, w); checked."""
        chosen = self.check_layers(layers)
        grids = self.layer_grids()
        if resolutions is not None:
            valid = sorted(set(grids), reverse=True)
            wanted = [tuple(r) for r in resolutions]
            for r in wanted:
                if r not in valid:
                    raise ValueError(f"resolution {r} has no layer: map sizes are {valid}")
            pool = chosen if chosen is not None else range(NUM_TRANSFORMERS)
            chosen = [i for i in pool if grids[i] in wanted]
            if not chosen:
                raise ValueError(f"no layer in {layers} has a map size in {wanted}")
        return chosen if chosen is not None else self.default_layers()

    def step_positions(self, steps):
        """Positions in the per-step records of the recorded step indices `steps`; None -> None."""
        if steps is None:
            return None
        if not self.per_step_kept:
            raise ValueError("steps= at compute time needs per-step records: open the trace "
                             "with per_step=True (or pass steps= to daam.trace to record only "
                             "those steps)")
        recorded = self.steps
        positions = []
        for s in steps:
            if s not in recorded:
                raise ValueError(f"step {s!r} was not recorded: recorded steps are "
                                 f"{recorded[0]}..{recorded[-1]}")
            positions.append(recorded.index(s))
        return positions

    # -- words and their token weights ----------------------------------------------------
    def words(self, image=0):
        return prompt_words(self.prompts[self.check_image(image)])

    def token_indices(self, word, image=0):
        return self.tokens.word_indices(self.prompts[self.check_image(image)], word)

    def rollout(self, image=0):
        """(L, L): the text encoder's attention rollout for the prompt of `image`."""
        if not self.rollout_recorded:
            raise ValueError("rollout needs a trace opened with text_rollout=True")
        image = self.check_image(image)
        records = [self.trace[site] for site in self.text_sites]    # (prompts, heads, L, L)
        per_prompt = len(self.prompts) // len(records[0])           # images per prompt
        return attention_rollout([r[image // per_prompt] for r in records])

    def word_weights(self, words, image=0):
        """(tokens, words) weights of each token's map in each word's map: the sub-token
        average (DAAM), or with text_rollout the rollout's share of the word in each token."""
        groups = [self.token_indices(w, image) for w in words]
        weights = group_weights(groups, self.tokens.length)
        if self.text_rollout:
            weights = (self.rollout(image) @ weights).astype(np.float32)
        return weights

    # -- DAAM maps ------------------------------------------------------------------------
    def compute_heat_maps(self, image=0, words=None, layers=None, heads=None,
                          resolutions=None, steps=None):
        """`HeatMaps` of one image: every (layer, head, word) map, aggregated once.

        words: default every word of the image's prompt; layers, heads, resolutions: the
        selection (default: every head, every layer but those at 1/8 of the latent); steps:
        recorded step indices to sum (per-step traces; default all).
        """
        image = self.check_image(image)
        words = self.words(image) if words is None else list(words)
        weights = self.word_weights(words, image)
        layers = self.select_layers(layers, resolutions)
        heads = self.select_heads(heads)
        positions = self.step_positions(steps)
        maps = [self.summed(self.site(i), image, positions)[heads] for i in layers]
        grid = aggregate(maps, self.latent_hw, self.image_hw, None, weights=weights)
        return HeatMaps(grid, words, layers, heads, self.prompts[image], self.text_rollout)

    def heat_maps(self, words=None, image=0, layers=None, heads=None, resolutions=None,
                  steps=None):
        """{word: (H, W) float32}: DAAM maps (mean over the selected layers and heads)."""
        return self.compute_heat_maps(image, words, layers, heads, resolutions,
                                      steps).global_maps()

    def heat_map(self, word, image=0, **selection):
        """(H, W) float32: DAAM map of one word (layers, heads, resolutions, steps: selections)."""
        return self.compute_heat_maps(image, [word], **selection).word(word)

    def per_layer(self, word, image=0, **selection):
        """(layers, H, W): one map per selected layer (heads averaged); the layer indices."""
        return self.compute_heat_maps(image, [word], **selection).per_layer(word)

    def per_head(self, word, image=0, **selection):
        """(heads, H, W): one map per head (layers averaged); the head indices."""
        return self.compute_heat_maps(image, [word], **selection).per_head(word)

    def per_step(self, word, image=0, layers=None, heads=None, resolutions=None, clamp=True):
        """(steps, H, W): each recorded step's map (each clamped, as in the paper), and the step
        indices. Needs per_step=True. Their sum is the global map up to the clamp's order
        (exactly, with clamp=False)."""
        if not self.per_step_kept:
            raise ValueError("per_step maps need a trace opened with per_step=True")
        image = self.check_image(image)
        weights = self.word_weights([word], image)
        layers = self.select_layers(layers, resolutions)
        heads = self.select_heads(heads)
        maps = [self.trace[self.site(i)][:, image][:, heads] for i in layers]
        out = aggregate(maps, self.latent_hw, self.image_hw, None, clamp=clamp, weights=weights)
        return out[:, :, :, 0].mean(axis=(0, 2)), self.steps  # (L, steps, heads, H, W)

    # -- beyond DAAM ----------------------------------------------------------------------
    def open_vocabulary_map(self, word, image=0, layers=None, heads=None, resolutions=None,
                            steps=None):
        """(H, W): OVAM map of any word, even one not in the prompt; needs
        open_vocabulary=True (`open_vocabulary.open_vocabulary_map`)."""
        return open_vocabulary.open_vocabulary_map(self, word, image, layers, heads,
                                                   resolutions, steps)

    def self_attention_map(self, pixel, image=0, layers=None, heads=None):
        """(H, W): where pixel (y, x) attends (`self_attention.self_attention_map`)."""
        return self_attention.self_attention_map(self, pixel, image, layers, heads)


def trace(pipe, per_step=False, open_vocabulary=False, self_attention=False, steps=None,
          text_rollout=False, edits=None):
    """Opens a `DAAMTrace` around the generation calls of `pipe` (use as a `with` block)."""
    return DAAMTrace(pipe, per_step, open_vocabulary, self_attention, steps, text_rollout,
                     edits)
