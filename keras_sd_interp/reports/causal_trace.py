"""Causal tracing results -> files: the JSON, the U-Net effect figure, the text-encoder map."""

import os

import numpy as np

from keras_sd_interp import io
from keras_sd_interp.attribution import causal_trace as ct
from keras_sd_interp.lens import components as parts
from keras_sd_interp.reports.plotting import causal_trace as plots


def _json_ready(value):
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    return value.tolist() if isinstance(value, np.ndarray) else value


def write_causal_trace(result, output_dir, token_labels=None, num_text_layers=None,
                       stability=None):
    """Writes causal_trace.json (result + component table + stability), unet_effect.png (when U-Net
    components were traced) and text_effect.png (when text components were; `token_labels`
    indexed by token position, e.g. `causal_trace.token_labels`). Returns the paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {}
    components, effect = result["components"], np.asarray(result["effect"])
    unet = [i for i, c in enumerate(components) if not c.startswith("text.")]
    record = _json_ready(result)
    record["table"] = parts.component_table([components[i] for i in unet])
    if stability is not None:
        record["stability"] = stability
    paths["json"] = os.path.join(output_dir, "causal_trace.json")
    io.save_json(paths["json"], record)
    title = (f"{len(result['cases'])} prompt(s) x {len(result['seeds'])} seed(s), "
             f"noise {result['noise_scale']} x std, {result['num_steps']} steps")
    if unet:
        names = [components[i] for i in unet]
        spread = np.asarray(result["effects"])[..., unet].reshape(-1, len(unet)).std(0)
        figure = plots.unet_effect_figure(names, effect[unet], [parts.unet_block(c) for c in names],
                                          title="U-Net indirect effect: " + title, errors=spread)
        paths["unet"] = os.path.join(output_dir, "unet_effect.png")
        io.save_figure(paths["unet"], figure, dpi=120)
    text = [c for c in components if c.startswith("text.")]
    if text and num_text_layers:
        tokens = sorted({parts.split_component(c)[1] for c in text})
        labels = ([token_labels[t] for t in tokens] if token_labels
                  else [str(t) for t in tokens])
        maps = [ct.text_effect_map(result, num_text_layers, tokens, kind) for kind in parts.TEXT_KINDS]
        figure = plots.text_map_figure(maps, labels, ["self-attention (attn.out)", "MLP (mlp.out)"],
                                       title="text encoder indirect effect: " + title)
        paths["text"] = os.path.join(output_dir, "text_effect.png")
        io.save_figure(paths["text"], figure, dpi=120)
    return paths
