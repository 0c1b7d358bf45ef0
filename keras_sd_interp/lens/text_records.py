"""Text-encoder sites recorded by one compiled call, running the encoder only as far as needed.

    values = text_site_values(pipe, prompts, ["text.layer_0.attn.z", "text.layer_0.attn.out"])
    values["text.layer_0.attn.z"]      # NumPy (n, L, D)
    contexts = text_contexts(pipe, prompts)   # the encoder's output (n, L, D), compiled

DiffQuickFix reads layer 0 only: the encoder is cut after the deepest layer the sites name (a
Keras model on the same layers, so the same weights), and the call is a `tf.function` traced
inside a `sites.hooks` block, so the records are its outputs (built once per pipeline and sites).
"""

import re

import keras
import numpy as np
import tensorflow as tf

from keras_sd_interp.lens.cache import model_cache
from keras_sd_interp.lens.sites import hooks


def _deepest_layer(sites):
    """The largest i of the "text.layer_{i}..." sites; ValueError for other sites."""
    found = [re.match(r"text\.layer_(\d+)\.", name) for name in sites]
    bad = [name for name, match in zip(sites, found) if match is None]
    if bad or not sites:
        raise ValueError(f"sites {bad or list(sites)}: give text-layer sites such as "
                         "'text.layer_0.attn.z'")
    return max(int(match.group(1)) for match in found)


def _prefix(encoder, layer):
    """A Keras model from the encoder's inputs to text layer `layer`'s output."""
    for candidate in encoder.layers:
        if getattr(candidate, "site_name", None) == f"text.layer_{layer}":
            return keras.Model(encoder.inputs, candidate.output)
    raise ValueError(f"the text encoder has no layer {layer}")


def _recorder(pipe, sites):
    def build():
        prefix = _prefix(pipe.text_encoder, _deepest_layer(sites))

        def run(tokens, positions):
            with hooks(record=list(sites)) as cache:
                prefix({"tokens": tokens, "positions": positions})
            return {name: cache[name] for name in sites}

        return tf.function(run, reduce_retracing=True)

    return model_cache(pipe.text_encoder).get_or_build(("lens.text_records", tuple(sites)),
                                                       build)


def _inputs(pipe, prompts):
    tokens = tf.constant(np.asarray(pipe.tokens(list(prompts))), tf.int32)
    positions = tf.repeat(pipe._get_pos_ids(), len(prompts), axis=0)
    return tokens, positions


def text_site_values(pipe, prompts, sites):
    """{site: NumPy (n, L, D)} of text-layer `sites` for `prompts` (list of n str)."""
    values = _recorder(pipe, tuple(sites))(*_inputs(pipe, prompts))
    return {name: np.asarray(value) for name, value in values.items()}


def text_contexts(pipe, prompts):
    """The text encoder's output, the U-Net's context (n, L, D) NumPy, by a compiled call."""
    encode = model_cache(pipe.text_encoder).get_or_build(
        "lens.text_contexts", lambda: tf.function(
            lambda tokens, positions: pipe.text_encoder({"tokens": tokens,
                                                         "positions": positions}),
            reduce_retracing=True))
    return np.asarray(encode(*_inputs(pipe, prompts)))
