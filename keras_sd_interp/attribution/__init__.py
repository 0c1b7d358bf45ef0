"""Attribution methods: which words and which places shape a generated image.

- `daam`: DAAM (Tang et al., 2022) per-word cross-attention heat maps from one traced
  generation, per head, layer and step, for a batch of prompts, and open-vocabulary maps
  (OVAM-style) for words that are not in the prompt.

Methods take models and return arrays; `keras_sd_interp.reports.daam` draws them.
"""
