"""The DDPM shipped in the package: export a training checkpoint to it, and load it back."""

import json
import os

from keras_sd_interp.ddpm.schedules import get_schedule
from keras_sd_interp.ddpm.train import STATE_FILE, WEIGHTS_FILE
from keras_sd_interp.ddpm.unet import build_unet
from keras_sd_interp.io import save_json
from keras_sd_interp.models.keras_weights import load_weights_checked, save_float16_weights

ASSET_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "ddpm")
ASSET_WEIGHTS = "ddpm_unet.weights.h5"
ASSET_RECORD = "ddpm_record.json"


def _read_json(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist")
    with open(path) as f:
        return json.load(f)


def export_checkpoint(checkpoint_dir, out_dir=ASSET_DIR, extra_record=None):
    """Writes a checkpoint's weights as float16 `ddpm_unet.weights.h5` plus `ddpm_record.json`.

    Returns the record dict (training settings, losses, times, and `extra_record`).
    """
    state = _read_json(os.path.join(checkpoint_dir, STATE_FILE), "DDPM checkpoint state")
    settings = state["settings"]
    model = load_weights_checked(build_unet(dim=settings["dim"]),
                                 os.path.join(checkpoint_dir, WEIGHTS_FILE), what="DDPM checkpoint")
    save_float16_weights(model, os.path.join(out_dir, ASSET_WEIGHTS))
    record = {**state, **(extra_record or {})}
    save_json(os.path.join(out_dir, ASSET_RECORD), record)
    return record


def load_ddpm(asset_dir=ASSET_DIR):
    """Loads the shipped DDPM. Returns (model, train_betas (T,), record dict)."""
    record = _read_json(os.path.join(asset_dir, ASSET_RECORD), "DDPM record")
    settings = record["settings"]
    model = load_weights_checked(build_unet(dim=settings["dim"]),
                                 os.path.join(asset_dir, ASSET_WEIGHTS), what="DDPM")
    return model, get_schedule(settings["schedule"], settings["timesteps"]), record
