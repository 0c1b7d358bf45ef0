"""Attribution methods: which words, places and components shape a generated image.

- `daam`: DAAM (Tang et al., 2022) per-word cross-attention heat maps from one traced
  generation, per head, layer and step, for a batch of prompts (a `HeatMaps` result per
  image), and open-vocabulary maps (OVAM-style) for words that are not in the prompt.
- `causal_trace`: causal tracing (Basu et al., 2024) of U-Net and text-encoder components:
  a corrupted run with one component's clean output restored at every step.

Methods take models and return arrays; `keras_sd_interp.reports` draws them.
"""
