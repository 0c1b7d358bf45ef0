"""DAAM: per-word heat maps from the cross-attention of one traced generation.

Tang et al. (2022), "What the DAAM: Interpreting Stable Diffusion Using Cross Attention".
Each cross-attention map (conditional half only, `spatial_transformer_i.attn2.probs`,
(n, heads, h*w, tokens)) is summed over the steps, upscaled bicubically to the image size
(latent x its factor: x8 on SD v1.4, x4 on tiny), clamped at zero, and averaged over heads and
layers; a word's map is the mean of its sub-tokens' maps (token positions are offset by one
for the start token). As DAAM's code does, maps at 1/8 of the latent (SD v1.4's 8x8 middle
block at 512 px, tiny's 1x2) are left out by default.

    from keras_sd_interp.attribution import daam
    with daam.trace(pipe) as tc:                       # around the user's own generation
        gen = pipe.sampler.generate(["a sneaker and a bag", "a dress"], num_steps=25, seed=0)
    tc.heat_map("bag", image=0)                         # (H, W) float32
    tc.heat_maps(image=0)                               # {word: (H, W)} for every prompt word
    tc.per_layer("bag", image=0); tc.per_head("bag", image=0)   # (layers, H, W), (heads, H, W)
    daam.mask(tc.heat_map("bag"), tau=0.4)              # bool (H, W)

    with daam.trace(pipe, per_step=True, open_vocabulary=True, self_attention=True) as tc:
        ...
    tc.per_step("bag")                 # (steps, H, W): each step's map (GIF frames)
    tc.open_vocabulary_map("boot")     # a word not in the prompt, no second generation
    tc.self_attention_map((10, 40))    # where pixel (y, x) looks (attn1.probs)

Beyond DAAM, `text_rollout=True`: a word's map also takes the maps of the tokens that carry it.
The text encoder is causal, so a later token ("and", the end token, padding) can hold an earlier
word, and the U-Net may read the word there. Attention rollout (Abnar & Zuidema, 2020) through
the encoder's self-attention, R = prod_l (0.5 A_l + 0.5 I) (heads averaged, last layer first),
gives R[j, t] = the share of output token j that comes from input token t; the word's map is
sum_j R[j, t] map_j (averaged over its sub-tokens t). Off by default (DAAM as published).

Recording is read-only: the images are bit-identical to those made with no trace (tested).
Without per_step / open_vocabulary the trace keeps one streaming sum per layer (the lens'
`reduce="sum"`); with them it keeps every step.

Order of the clamp: the paper writes the clamp inside the sum over steps; DAAM's code (and
this module) sums the raw maps over steps first, then upscales and clamps each (layer, head,
token) map. Upscaling is linear, so the two differ only where a step's bicubic undershoot is
negative; `per_step` maps are each clamped (the paper's form), so their sum exceeds the global
map by that undershoot (tests bound it). TF's bicubic kernel is Keys' a = -0.5 (PyTorch's,
used by DAAM, is a = -0.75), half-pixel centres in both.
"""

import re

import numpy as np
import tensorflow as tf

from keras_sd_interp import lens

NUM_LAYERS = 16  # spatial transformers in SD v1.x's U-Net (and in tiny, which has the same 66 layers)
DEFAULT_TAU = 0.4
EXCLUDED_FACTOR = 8  # maps at 1/8 of the latent are left out by default, as in DAAM


def layer_name(index):
    return f"spatial_transformer_{index}"


# -- checks shared with scripts/daam.py (they need no model) ------------------------------
def check_tau(tau):
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) \
            or not 0.0 <= float(tau) <= 1.0:
        raise ValueError(f"tau={tau!r}: use a number in [0, 1] (the threshold on the "
                         f"min-max-normalised map; DAAM's default is {DEFAULT_TAU})")
    return float(tau)


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


def prompt_words(prompt):
    """The words of a prompt as DAAM's users name them: lower case, punctuation stripped."""
    return [w for w in (re.sub(r"^[^\w]+|[^\w]+$", "", word) for word in prompt.lower().split())
            if w]


def check_prompt(prompt):
    if not isinstance(prompt, str) or not prompt_words(prompt):
        raise ValueError(f"prompt={prompt!r} is empty: DAAM maps the words of a prompt; "
                         "give a non-empty prompt such as 'a sneaker and a bag'")
    return prompt


def check_words(prompt, words):
    """Every word must be one of the prompt's words; the error lists them."""
    valid = prompt_words(prompt)
    for word in words:
        if word.lower() not in valid:
            raise ValueError(f"word {word!r} is not in the prompt {prompt!r}; its words are "
                             f"{valid} (use open_vocabulary_map for other words)")
    return list(words)


def check_request(model, prompts, words=(), layers=None, heads=None, tau=DEFAULT_TAU):
    """Checks a DAAM request before any model is built (scripts/daam.py's flags).

    model: "tiny" or "sd14"; prompts: list of str; words: each must be in some prompt;
    layers: indices 0..15; heads: 0..num_heads-1; tau in [0, 1]. Raises ValueError naming the
    bad value and what is valid. Prompt length: exact for tiny (its word tokenizer), a lower
    bound (one token per word) for sd14, whose BPE tokenizer needs its vocabulary file.
    """
    from keras_sd_interp.models import DEFAULT_SIZES
    from keras_sd_interp.models.config import get_config

    config = get_config(model)
    check_tau(tau)
    check_indices("layer", layers, NUM_LAYERS)
    check_indices("head", heads, config.num_heads)
    if not prompts:
        raise ValueError("no prompt: give at least one --prompt")
    context = DEFAULT_SIZES[config.name][2]
    for prompt in prompts:
        check_prompt(prompt)
        if config.name == "tiny":
            from keras_sd_interp.models.tiny_text import WordTokenizer

            tokenizer = WordTokenizer(max_length=context)
            try:
                tokenizer.pad(tokenizer.encode(prompt))
            except ValueError as error:
                raise ValueError(f"prompt {prompt!r}: {error}") from None
        elif len(prompt.split()) + 2 > context:
            raise ValueError(f"prompt {prompt!r} has {len(prompt.split())} words: SD v1.4 takes "
                             f"at most {context} tokens with start and end")
    every = sorted({w for p in prompts for w in prompt_words(p)})
    for word in words:
        if not any(word.lower() in prompt_words(p) for p in prompts):
            raise ValueError(f"word {word!r} is in no prompt; the prompts' words are {every}")
    return config


def word_token_indices(prompt_ids, word_ids):
    """Positions in a prompt's token ids (start token at 0) of every occurrence of a word's
    sub-token ids; [] when absent. prompt_ids: the full padded row; word_ids: without start/end.
    """
    prompt_ids, word_ids = list(map(int, prompt_ids)), list(map(int, word_ids))
    k = len(word_ids)
    found = []
    if k == 0:
        return found
    for start in range(1, len(prompt_ids) - k + 1):  # offset 1: position 0 is the start token
        if prompt_ids[start:start + k] == word_ids:
            found += range(start, start + k)
    return sorted(set(found))


class Tokens:
    """A pipeline's tokenization seen as sub-token id lists (works for tiny and SD v1.4)."""

    def __init__(self, pipe):
        self.pipe = pipe
        empty = np.asarray(pipe.tokens([""]))[0]
        self.start, self.end = int(empty[0]), int(empty[1])
        self.length = len(empty)

    def row(self, prompt):
        try:
            return [int(t) for t in np.asarray(self.pipe.tokens([prompt]))[0]]
        except ValueError as error:  # too long, unknown word: the tokenizer says what is valid
            raise ValueError(f"prompt {prompt!r}: {error}") from None

    def split(self, text):
        """Sub-token ids of `text` (no start/end)."""
        row = self.row(text)[1:]
        return row[:row.index(self.end)] if self.end in row else row

    def word_indices(self, prompt, word):
        indices = word_token_indices(self.row(prompt), self.split(word))
        if not indices:
            check_words(prompt, [word])  # names the prompt's words
            raise ValueError(f"word {word!r} was not found in the tokens of {prompt!r}")
        return indices


# -- arrays: attention, upscaling, aggregation ---------------------------------------------
def attention_probs(q, k, num_heads):
    """softmax(Q K^T / sqrt(d)) per head, as the U-Net computes it.

    q: (..., queries, heads*d); k: (..., keys, heads*d) -> (..., heads, queries, keys).
    """
    q, k = tf.convert_to_tensor(q, tf.float32), tf.convert_to_tensor(k, tf.float32)
    d = q.shape[-1] // num_heads
    qh = tf.reshape(q, tf.concat([tf.shape(q)[:-1], [num_heads, d]], 0))
    kh = tf.reshape(k, tf.concat([tf.shape(k)[:-1], [num_heads, d]], 0))
    rank = len(q.shape)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2, rank]  # (..., heads, n, d)
    qh, kh = tf.transpose(qh, perm), tf.transpose(kh, perm)
    logits = tf.matmul(qh, kh, transpose_b=True) * (d ** -0.5)
    return tf.nn.softmax(logits, axis=-1)


@tf.function(reduce_retracing=True, autograph=False)
def _upscale(maps, size, clamp):
    """maps (N, h, w, C) -> bicubic (N, H, W, C), clamped at zero when `clamp`. One compiled
    call per batch of maps (all layers of a resolution, all heads, all tokens)."""
    up = tf.image.resize(maps, size, method="bicubic")
    return tf.maximum(up, 0.0) if clamp else up


def map_grid(num_queries, latent_hw):
    """(h, w) of a map with `num_queries` positions on a latent of (lh, lw), and its factor."""
    lh, lw = latent_hw
    factor = int(round(np.sqrt(lh * lw / num_queries)))
    if factor < 1 or (lh // factor) * (lw // factor) != num_queries:
        raise ValueError(f"{num_queries} positions do not tile the latent {latent_hw}")
    return lh // factor, lw // factor, factor


def group_weights(groups, num_tokens):
    """(num_tokens, G) weights of DAAM's sub-token average: column g is 1/len(group) on the
    tokens of groups[g]."""
    weights = np.zeros((num_tokens, len(groups)), np.float32)
    for g, group in enumerate(groups):
        for t in group:
            weights[t, g] += 1.0 / len(group)
    return weights


def attention_rollout(probs):
    """Attention rollout through a text encoder (Abnar & Zuidema, 2020).

    probs: list over layers (first to last) of (heads, L, L) self-attention probabilities.
    Returns R (L, L) float64, R = A~_last ... A~_first with A~ = 0.5 mean_heads(A) + 0.5 I:
    row j says how much of output token j comes from each input token (rows sum to 1).
    """
    rollout = None
    for layer_probs in probs:
        a = np.asarray(layer_probs, np.float64).mean(0)
        a = 0.5 * a + 0.5 * np.eye(len(a))
        a /= a.sum(-1, keepdims=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def aggregate(maps, latent_hw, image_hw, groups, clamp=True, weights=None):
    """DAAM's per-(layer, head) word maps from attention summed over steps.

    Args:
        maps: list over layers of arrays (..., heads, h*w, tokens) (leading axes: images,
            or steps and images), each layer at its own resolution.
        latent_hw, image_hw: (h, w) of the latent and of the image.
        groups: list of token-index lists (one per word: its sub-tokens, averaged).
        clamp: clamp each upscaled map at zero (DAAM); False keeps the maps linear.
        weights: optional (tokens, G) token weights of each word, used instead of `groups`
            (text rollout: column g = the rollout's share of word g in each token).

    Returns:
        float32 (layers, ..., heads, words, H, W): each token map upscaled bicubically to the
        image, clamped, then averaged over the word's tokens. Averaging over heads and layers is
        left to the caller (`reduce_maps`), so one call serves global, per-layer and per-head maps.
    """
    if weights is None:
        weights = group_weights(groups, maps[0].shape[-1])
    needed = [int(t) for t in np.flatnonzero(np.abs(weights).sum(1))]
    weights = np.asarray(weights, np.float32)[needed]
    by_grid = {}
    for index, layer_maps in enumerate(maps):
        h, w, _ = map_grid(layer_maps.shape[-2], latent_hw)
        by_grid.setdefault((h, w), []).append(index)
    out = [None] * len(maps)
    for (h, w), indices in by_grid.items():
        stack = np.stack([np.asarray(maps[i])[..., needed] for i in indices])  # (L, ..., hw, T')
        lead = stack.shape[:-2]
        x = tf.reshape(tf.constant(stack, tf.float32), (-1, h, w, len(needed)))
        up = _upscale(x, tf.constant(image_hw, tf.int32), clamp)           # (N, H, W, T')
        words = tf.einsum("nhwt,tg->nghw", up, tf.constant(weights))        # (N, G, H, W)
        words = tf.reshape(words, lead + (weights.shape[1],) + tuple(image_hw)).numpy()
        for j, i in enumerate(indices):
            out[i] = words[j]
    return np.stack(out)


def mask(heat_map, tau=DEFAULT_TAU):
    """Binary mask: the min-max-normalised map above tau. heat_map (..., H, W) -> bool."""
    tau = check_tau(tau)
    m = np.asarray(heat_map, np.float32)
    low = m.min(axis=(-2, -1), keepdims=True)
    high = m.max(axis=(-2, -1), keepdims=True)
    return (m - low) / np.maximum(high - low, 1e-12) > tau


def normalize(heat_map):
    """Min-max normalisation to [0, 1] over the last two axes."""
    m = np.asarray(heat_map, np.float32)
    low = m.min(axis=(-2, -1), keepdims=True)
    return (m - low) / np.maximum(m.max(axis=(-2, -1), keepdims=True) - low, 1e-12)


# -- the trace -----------------------------------------------------------------------------
class DAAMTrace:
    """Records the cross-attention of one generation (any number of prompts) and computes
    DAAM maps from it. Use as a `with` block around `pipe.sampler.generate(...)` or
    `pipe.text_to_image(...)`; see the module docstring.

    Args:
        pipe: a pipeline (`load_pipeline("tiny")`, `load_pipeline("sd14", ...)`).
        per_step: keep every step's maps (needed by `per_step`, and `steps=` at compute time).
        open_vocabulary: also keep attn2.q and attn2.k of every step (OVAM maps).
        self_attention: False, True (every layer) or layer indices: keep attn1.probs (summed).
            On SD v1.4 at 512 px a 64x64 layer's self-attention is 0.5 GB: pick coarse layers.
        steps: record only these step indices (a list or range; None: all).
        text_rollout: also record the text encoder's self-attention and give each word the
            maps of the tokens that carry it (module docstring); the attribute `text_rollout`
            can be switched off and on after the run to compare.
    """

    def __init__(self, pipe, per_step=False, open_vocabulary=False, self_attention=False,
                 steps=None, text_rollout=False):
        self.pipe = pipe
        self.tokens = Tokens(pipe)
        self.num_heads = pipe.config.num_heads
        self.per_step_kept = bool(per_step or open_vocabulary)
        self.open_vocabulary = bool(open_vocabulary)
        if self_attention is True:
            self.self_layers = list(range(NUM_LAYERS))
        elif self_attention:
            self.self_layers = check_indices("layer", self_attention, NUM_LAYERS)
        else:
            self.self_layers = []
        record = ["*.attn2.probs"]
        if open_vocabulary:
            record += ["*.attn2.q", "*.attn2.k"]
        record += [f"{layer_name(i)}.attn1.probs" for i in self.self_layers]
        self.text_rollout = self.rollout_recorded = bool(text_rollout)
        self.text_sites = [s for s in lens.list_sites(pipe)
                           if s.startswith("text.") and s.endswith(".attn.probs")]
        if text_rollout:
            if not self.text_sites:
                raise ValueError("text_rollout needs a text encoder with attention sites "
                                 "(tiny and sd14 have them)")
            record += self.text_sites
        self.trace = lens.trace(pipe, record=record, steps=steps, half="cond",
                                reduce=None if self.per_step_kept else "sum")
        factor = pipe.config.latent_factor
        self.image_hw = (pipe.img_height, pipe.img_width)
        self.latent_hw = (pipe.img_height // factor, pipe.img_width // factor)
        self._sums = {}

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

    def _check_image(self, image):
        n = len(self.prompts)
        if isinstance(image, bool) or not isinstance(image, (int, np.integer)) \
                or not 0 <= image < n:
            raise ValueError(f"image {image!r} out of range: this generation has images 0..{n - 1}")
        return int(image)

    def layer_grids(self):
        """(h, w) of each layer's map, in layer order."""
        shapes = []
        for i in range(NUM_LAYERS):
            hw = self.trace[f"{layer_name(i)}.attn2.probs"].shape[-2]
            shapes.append(map_grid(hw, self.latent_hw)[:2])
        return shapes

    def default_layers(self):
        """Every layer except those at 1/8 of the latent (DAAM leaves SD's 8x8 maps out)."""
        return [i for i in range(NUM_LAYERS)
                if map_grid(self.trace[f"{layer_name(i)}.attn2.probs"].shape[-2],
                            self.latent_hw)[2] < EXCLUDED_FACTOR]

    def select_layers(self, layers=None, resolutions=None):
        """Layer indices from a layer list and/or a list of map sizes (h, w); checked."""
        chosen = check_indices("layer", layers, NUM_LAYERS)
        grids = self.layer_grids()
        if resolutions is not None:
            valid = sorted(set(grids), reverse=True)
            wanted = [tuple(r) for r in resolutions]
            for r in wanted:
                if r not in valid:
                    raise ValueError(f"resolution {r} has no layer: map sizes are {valid}")
            pool = chosen if chosen is not None else range(NUM_LAYERS)
            chosen = [i for i in pool if grids[i] in wanted]
            if not chosen:
                raise ValueError(f"no layer in {layers} has a map size in {wanted}")
        return chosen if chosen is not None else self.default_layers()

    def _step_positions(self, steps):
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

    def summed(self, site, image, positions=None):
        """A site's record for one image, summed over the (selected) steps."""
        value = self.trace[site]
        if self.per_step_kept:
            value = value[:, image] if positions is None else value[positions, image]
            return value.sum(0)
        return value[image]

    # -- word maps ------------------------------------------------------------------------
    def words(self, image=0):
        return prompt_words(self.prompts[self._check_image(image)])

    def token_indices(self, word, image=0):
        return self.tokens.word_indices(self.prompts[self._check_image(image)], word)

    def rollout(self, image=0):
        """(L, L): the text encoder's attention rollout for the prompt of `image`."""
        if not self.rollout_recorded:
            raise ValueError("rollout needs a trace opened with text_rollout=True")
        image = self._check_image(image)
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

    def word_layer_head_maps(self, words=None, image=0, layers=None, heads=None,
                             resolutions=None, steps=None):
        """The maps before averaging: (layers, heads, words, H, W), plus the layer and head
        indices and the words they are for."""
        image = self._check_image(image)
        words = self.words(image) if words is None else list(words)
        weights = self.word_weights(words, image)
        layers = self.select_layers(layers, resolutions)
        heads = check_indices("head", heads, self.num_heads) or list(range(self.num_heads))
        positions = self._step_positions(steps)
        maps = [self.summed(f"{layer_name(i)}.attn2.probs", image, positions)[heads]
                for i in layers]
        return (aggregate(maps, self.latent_hw, self.image_hw, None, weights=weights), layers,
                heads, words)

    def heat_maps(self, words=None, image=0, layers=None, heads=None, resolutions=None,
                  steps=None):
        """{word: (H, W) float32}: DAAM maps (mean over the selected layers and heads)."""
        maps, _, _, words = self.word_layer_head_maps(words, image, layers, heads, resolutions,
                                                      steps)
        mean = maps.mean(axis=(0, 1))
        return {w: mean[g] for g, w in enumerate(words)}

    def heat_map(self, word, image=0, **selection):
        """(H, W) float32: DAAM map of one word (layers, heads, resolutions, steps: selections)."""
        return self.heat_maps([word], image, **selection)[word]

    def per_layer(self, word, image=0, **selection):
        """(layers, H, W): one map per selected layer (heads averaged); the layer indices."""
        maps, layers, _, _ = self.word_layer_head_maps([word], image, **selection)
        return maps[:, :, 0].mean(1), layers

    def per_head(self, word, image=0, **selection):
        """(heads, H, W): one map per head (layers averaged); the head indices."""
        maps, _, heads, _ = self.word_layer_head_maps([word], image, **selection)
        return maps[:, :, 0].mean(0), heads

    def per_step(self, word, image=0, layers=None, heads=None, resolutions=None, clamp=True):
        """(steps, H, W): each recorded step's map (each clamped, as in the paper), and the step
        indices. Needs per_step=True. Their sum is the global map up to the clamp's order
        (exactly, with clamp=False)."""
        if not self.per_step_kept:
            raise ValueError("per_step maps need a trace opened with per_step=True")
        image = self._check_image(image)
        weights = self.word_weights([word], image)
        layers = self.select_layers(layers, resolutions)
        heads = check_indices("head", heads, self.num_heads) or list(range(self.num_heads))
        maps = [self.trace[f"{layer_name(i)}.attn2.probs"][:, image][:, heads] for i in layers]
        out = aggregate(maps, self.latent_hw, self.image_hw, None, clamp=clamp, weights=weights)
        return out[:, :, :, 0].mean(axis=(0, 2)), self.steps  # (L, steps, heads, H, W)

    # -- beyond DAAM ----------------------------------------------------------------------
    def extra_keys(self, text, layers):
        """attn2 keys of `text` encoded alone: {layer index: (tokens, heads*d)}, read through the
        lens from one U-Net call (keys do not depend on the latent or the step)."""
        from keras_sd_interp.lens import taps

        unet = self.pipe.diffusion_model
        context = self.pipe.sampler.encode([text])
        inputs = [tf.zeros((1,) + tuple(x.shape[1:])) for x in unet.inputs[:2]] + [context]
        sites = [f"{layer_name(i)}.attn2.k" for i in layers]
        _, cache = taps.run_with_cache(unet, inputs, sites)
        return {i: np.asarray(cache[s])[0] for i, s in zip(layers, sites)}

    def open_vocabulary_map(self, word, image=0, layers=None, heads=None, resolutions=None,
                            steps=None):
        """(H, W): OVAM-style map of any word, from the recorded queries, without a second
        generation. The word, encoded alone by the text encoder, gives extra keys per layer;
        each step's softmax runs over the prompt's keys plus these, and the word's columns are
        aggregated as DAAM does. A word already in the prompt uses its own keys (no extra
        ones), so its map equals `heat_map` without text rollout (tested); rollout is not
        applied here (the word is in no token of the prompt). Needs open_vocabulary=True."""
        if not self.open_vocabulary:
            raise ValueError("open_vocabulary_map needs a trace opened with open_vocabulary=True")
        image = self._check_image(image)
        prompt = self.prompts[image]
        layers = self.select_layers(layers, resolutions)
        heads = check_indices("head", heads, self.num_heads) or list(range(self.num_heads))
        positions = self._step_positions(steps)
        in_prompt = word.lower() in prompt_words(prompt)
        if in_prompt:
            columns, extra = self.tokens.word_indices(prompt, word), None
        else:
            split = self.tokens.split(word)
            if not split:
                raise ValueError(f"word {word!r} has no tokens")
            extra = self.extra_keys(word, layers)
            columns = list(range(self.tokens.length, self.tokens.length + len(split)))
        maps = []
        for i in layers:
            q = self.trace[f"{layer_name(i)}.attn2.q"][:, image]   # (steps, hw, heads*d)
            k = self.trace[f"{layer_name(i)}.attn2.k"][:, image]   # (steps, T, heads*d)
            if positions is not None:
                q, k = q[positions], k[positions]
            if extra is not None:
                word_keys = extra[i][1:1 + len(columns)]
                k = np.concatenate([k, np.broadcast_to(word_keys, (len(k),) + word_keys.shape)],
                                   axis=1)
            probs = attention_probs(q, k, self.num_heads).numpy()  # (steps, heads, hw, T+E)
            maps.append(probs.sum(0)[heads])
        out = aggregate(maps, self.latent_hw, self.image_hw, [columns])
        return out[:, :, 0].mean(axis=(0, 1))

    def self_attention_map(self, pixel, image=0, layers=None, heads=None):
        """(H, W): where image pixel (y, x) attends in self-attention (attn1.probs summed over
        steps; upscaled, clamped, averaged over heads and the recorded layers)."""
        if not self.self_layers:
            raise ValueError("self_attention_map needs a trace opened with self_attention=True "
                             "(or a list of layers)")
        image = self._check_image(image)
        height, width = self.image_hw
        y, x = pixel
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f"pixel {pixel!r} is outside the image: y in 0..{height - 1}, "
                             f"x in 0..{width - 1}")
        layers = self.self_layers if layers is None else check_indices("layer", layers,
                                                                       NUM_LAYERS)
        missing = sorted(set(layers) - set(self.self_layers))
        if missing:
            raise ValueError(f"layers {missing} had no self-attention recorded: recorded "
                             f"{self.self_layers}")
        heads = check_indices("head", heads, self.num_heads) or list(range(self.num_heads))
        maps = []
        for i in layers:
            probs = self.summed(f"{layer_name(i)}.attn1.probs", image)[heads]  # (heads, q, k)
            h, w, _ = map_grid(probs.shape[-1], self.latent_hw)
            query = (y * h // height) * w + (x * w // width)
            maps.append(probs[:, query, :][..., None])      # (heads, hw, 1)
        out = aggregate(maps, self.latent_hw, self.image_hw, [[0]])
        return out[:, :, 0].mean(axis=(0, 1))


def trace(pipe, per_step=False, open_vocabulary=False, self_attention=False, steps=None,
          text_rollout=False):
    """Opens a `DAAMTrace` around the generation calls of `pipe` (use as a `with` block)."""
    return DAAMTrace(pipe, per_step, open_vocabulary, self_attention, steps, text_rollout)
