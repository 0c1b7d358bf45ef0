"""The DDPM shipped in the package: load it (`training.ddpm.export_checkpoint` writes it)."""

import json
import os

from keras_sd_interp.ddpm.schedules import get_schedule
from keras_sd_interp.ddpm.unet import build_unet
from keras_sd_interp.models.keras_weights import load_weights_checked

ASSET_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "ddpm")
ASSET_WEIGHTS = "ddpm_unet.weights.h5"
ASSET_RECORD = "ddpm_record.json"


def read_json(path, what):
    """The JSON file at `path`; a missing file is a FileNotFoundError naming `what` it is."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} {path!r} does not exist")
    with open(path) as f:
        return json.load(f)


def ddpm_timesteps(asset_dir=ASSET_DIR):
    """T, the number of training steps of the shipped DDPM (read from its record, no model)."""
    return read_json(os.path.join(asset_dir, ASSET_RECORD), "DDPM record")["settings"]["timesteps"]


def load_ddpm(asset_dir=ASSET_DIR):
    """Loads the shipped DDPM. Returns (model, train_betas (T,), record dict)."""
    record = read_json(os.path.join(asset_dir, ASSET_RECORD), "DDPM record")
    settings = record["settings"]
    model = load_weights_checked(build_unet(dim=settings["dim"]),
                                 os.path.join(asset_dir, ASSET_WEIGHTS), what="DDPM")
    return model, get_schedule(settings["schedule"], settings["timesteps"]), record
