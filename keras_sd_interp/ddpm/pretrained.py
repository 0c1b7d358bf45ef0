"""The DDPM shipped in the package: load it (`training.ddpm.export_checkpoint` writes it)."""

import json
import os

import numpy as np

from keras_sd_interp.ddpm.prior import STARTS, MatchedStart
from keras_sd_interp.ddpm.sampler import Sampler
from keras_sd_interp.ddpm.schedules import get_schedule
from keras_sd_interp.ddpm.unet import build_unet
from keras_sd_interp.models.keras_weights import load_weights_checked

ASSET_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "ddpm")
ASSET_WEIGHTS = "ddpm_unet.weights.h5"
ASSET_RECORD = "ddpm_record.json"
ASSET_MOMENTS = "ddpm_data_moments.npz"


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


def load_data_moments(asset_dir=ASSET_DIR):
    """The training images' (mean (D,), covariance (D, D)), float64, saved with the export."""
    path = os.path.join(asset_dir, ASSET_MOMENTS)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"no data moments {path!r}: export the checkpoint again with train_ddpm.py (it "
            f"writes {ASSET_MOMENTS}), or start the chain from N(0, I) with start='standard'")
    with np.load(path) as arrays:
        return arrays["mean"].astype(np.float64), arrays["covariance"].astype(np.float64)


def load_ddpm_sampler(asset_dir=ASSET_DIR, start="matched", clip_x0=False, jit_compile=True):
    """The shipped (or exported) DDPM ready to sample. Returns (Sampler, record dict).

    start: "matched" (default) starts the chain from the Gaussian that matches the forward
    process's last step (`ddpm.prior.MatchedStart`); "standard" from N(0, I), as the
    annotated-diffusion example and the course milestone do.
    clip_x0: clip each predicted clean image to [-1, 1], as Ho et al.'s released sampler does
    (the annotated-diffusion example does not; measured on 1,000 samples it does not help here).
    """
    if start not in STARTS:
        raise ValueError(f"start={start!r} is not one of {STARTS}")
    model, train_betas, record = load_ddpm(asset_dir)
    first = None
    if start == "matched":
        alpha_bar = float(np.prod(1.0 - train_betas))
        first = MatchedStart(*load_data_moments(asset_dir), alpha_bar)
    return Sampler(model, train_betas, jit_compile=jit_compile, start=first, clip_x0=clip_x0), record
