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
    maps = tc.compute_heat_maps(image=0)                # HeatMaps: every word, aggregated once
    maps.global_maps()                                  # {word: (H, W)} for every prompt word
    maps.word("bag"); maps.per_layer("bag"); maps.per_head("bag")  # (H, W), (layers, ...), ...
    tc.heat_map("bag", image=0)                         # one word at once (also heat_maps,
                                                        # per_layer, per_head on the trace)
    daam.mask(maps.word("bag"), tau=0.4)                # bool (H, W)

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

Order of the clamp: the paper writes the clamp inside the sum over steps; DAAM's code (and
this package) sums the raw maps over steps first, then upscales and clamps each (layer, head,
token) map. Upscaling is linear, so the two differ only where a step's bicubic undershoot is
negative; `per_step` maps are each clamped (the paper's form), so their sum exceeds the global
map by that undershoot (tests bound it). TF's bicubic kernel is Keys' a = -0.5 (PyTorch's,
used by DAAM, is a = -0.75), half-pixel centres in both.

Modules, as DAAM's own code is split:
- `arrays`: the array math (attention, upscaling, aggregation, rollout, mask, normalise);
- words -> token positions: `lens.tokens` (shared with causal tracing and editing);
- `tracing`: `trace(pipe, ...)` / `DAAMTrace`, recording through `lens.trace`;
- `heat_maps`: `HeatMaps`, the result object (global / per-layer / per-head views);
- `open_vocabulary`, `self_attention`: maps beyond DAAM's words.
"""

from keras_sd_interp.attribution.daam.arrays import (DEFAULT_TAU, aggregate, attention_probs,
                                                     attention_rollout, check_tau,
                                                     group_weights, map_grid, mask, normalize)
from keras_sd_interp.attribution.daam.heat_maps import HeatMaps
from keras_sd_interp.lens.tokens import (Tokens, check_words, prompt_words,
                                        word_token_indices)
from keras_sd_interp.attribution.daam.tracing import (EXCLUDED_FACTOR, DAAMTrace, check_indices,
                                                      trace)
