"""SAeUron's published SAE checkpoints, read into our `SparseAutoencoder`.

    sae = load_saeuron("sae-ckpts/unet.up_blocks.1.attentions.1")    # a folder
    training.sae.save_saeuron(folder, sae)                             # the same format

The format, as SAeUron's code (a fork of EleutherAI's `sae`, `Sae.save_to_disk` /
`load_from_disk`) writes it: one folder per hookpoint (`unet.up_blocks.1.attentions.1` for
objects, `unet.up_blocks.1.attentions.2` for styles; Hugging Face repo `bcywinski/SAeUron`) with
  cfg.json          SaeConfig fields: expansion_factor, normalize_decoder, num_latents (0:
                    d_in * expansion_factor), k, batch_topk, sample_topk, input_unit_norm,
                    multi_topk, and d_in
  sae.safetensors   encoder.weight (m, d) and encoder.bias (m,) (a torch nn.Linear),
                    W_dec (m, d), b_dec (d,)
Their encoder computes relu((x - b_dec) @ encoder.weight.T + encoder.bias), then top-k; the
decoder z @ W_dec + b_dec: ours with W_enc = encoder.weight.T. The site is the block's output
(their default `output_or_diff="output"`), which is our `spatial_transformer_8` for
`up_blocks.1.attentions.1` and `spatial_transformer_9` for `.2`. SAEs trained with
`input_unit_norm` (each token standardised first) are refused: our SAE has no such step.
"""

import json
import os

import numpy as np

from keras_sd_interp.sae.model import SparseAutoencoder

CONFIG_FILE = "cfg.json"
WEIGHTS_FILE = "sae.safetensors"
TENSORS = {"encoder.weight": "(m, d)", "encoder.bias": "(m,)", "W_dec": "(m, d)",
           "b_dec": "(d,)"}
SITES = {"up_blocks.1.attentions.1": "spatial_transformer_8",
         "up_blocks.1.attentions.2": "spatial_transformer_9"}


def site_of_hookpoint(hookpoint):
    """Our site for a SAeUron hookpoint ("unet.up_blocks.1.attentions.1" -> st_8), or None."""
    return SITES.get(hookpoint.removeprefix("unet."))


def _read_config(folder):
    path = os.path.join(folder, CONFIG_FILE)
    try:
        with open(path) as handle:
            config = json.load(handle)
        d_in, k = int(config["d_in"]), int(config["k"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: expected SAeUron's cfg.json with d_in, k and expansion_factor "
                         f"or num_latents; {type(error).__name__}: {error}") from error
    if config.get("input_unit_norm"):
        raise ValueError(f"{path}: input_unit_norm is true (tokens standardised before "
                         "encoding); this SAE class has no such step")
    return config, d_in, k


def _read_tensors(folder):
    from safetensors.numpy import load_file

    path = os.path.join(folder, WEIGHTS_FILE)
    try:
        tensors = load_file(path)
    except Exception as error:   # missing, truncated or not a safetensors file
        raise ValueError(f"{path}: expected a safetensors file with "
                         f"{', '.join(f'{n} {s}' for n, s in TENSORS.items())}; "
                         f"{type(error).__name__}: {error}") from error
    missing = [name for name in TENSORS if name not in tensors]
    if missing:
        raise ValueError(f"{path}: missing tensors {missing}; found {sorted(tensors)}")
    return {name: np.asarray(value, np.float32) for name, value in tensors.items()}


def load_saeuron(folder):
    """A `SparseAutoencoder` from a SAeUron checkpoint folder (cfg.json + sae.safetensors).

    Returns the SAE (k from the config; expansion = num_latents / d_in). ValueError naming the
    file and what was expected when a file is missing, truncated or of other shapes."""
    if not os.path.isdir(folder):
        raise ValueError(f"SAeUron checkpoint {folder!r} is not a folder (expected one with "
                         f"{CONFIG_FILE} and {WEIGHTS_FILE})")
    config, d_in, k = _read_config(folder)
    tensors = _read_tensors(folder)
    num_latents = int(config.get("num_latents") or d_in * int(config["expansion_factor"]))
    shapes = {"encoder.weight": (num_latents, d_in), "encoder.bias": (num_latents,),
              "W_dec": (num_latents, d_in), "b_dec": (d_in,)}
    for name, shape in shapes.items():
        if tensors[name].shape != shape:
            raise ValueError(f"{os.path.join(folder, WEIGHTS_FILE)}: {name} has shape "
                             f"{tensors[name].shape}; cfg.json (d_in {d_in}, {num_latents} "
                             f"latents) needs {shape}")
    if num_latents % d_in:
        raise ValueError(f"{folder}: {num_latents} latents is not a multiple of d_in {d_in}")
    sae = SparseAutoencoder(d_in, num_latents // d_in, k)
    sae.set_weights({"W_enc": tensors["encoder.weight"].T.copy(),
                     "b_enc": tensors["encoder.bias"], "W_dec": tensors["W_dec"],
                     "b_dec": tensors["b_dec"]})
    return sae
