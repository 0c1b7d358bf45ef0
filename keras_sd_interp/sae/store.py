"""SAE weights from files: our .npz (`training.sae.save_sae`) or SAeUron's folders.

    sae = load_sae("keras_sd_interp/assets/sae/tiny_st8.npz")
    sae = load_sae("sae-ckpts/unet.up_blocks.1.attentions.1")    # cfg.json + sae.safetensors
"""

import os

import numpy as np

from keras_sd_interp.sae.model import SAE_ARRAYS, sae_from_arrays
from keras_sd_interp.sae.saeuron import load_saeuron


def load_sae(path):
    """Loads an SAE written by `training.sae.save_sae` (an .npz), or a folder in SAeUron's
    format (`cfg.json` + `sae.safetensors`, see `sae.saeuron`).

    Raises ValueError naming the file and what was expected when it is missing, truncated or
    not an SAE."""
    if os.path.isdir(path):
        return load_saeuron(path)
    if not os.path.isfile(path):
        raise ValueError(f"SAE file {path!r} does not exist (expected an .npz written by "
                         "save_sae, or a SAeUron folder with cfg.json and sae.safetensors)")
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return sae_from_arrays({name: arrays[name] for name in arrays.files})
    except Exception as error:   # BadZipFile, EOFError, pickled data, KeyError, shapes
        raise ValueError(f"{path!r} is not a readable SAE: expected an .npz written by "
                         f"save_sae with arrays {list(SAE_ARRAYS)}; {type(error).__name__}: "
                         f"{error}") from error
