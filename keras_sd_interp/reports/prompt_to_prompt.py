"""Files of prompt-to-prompt: the edit grid PNG, the reweight plot and the JSON numbers."""

import os

import numpy as np

from keras_sd_interp import io
from keras_sd_interp.reports.plotting.prompt_to_prompt import edit_grid_figure, reweight_figure


def to_uint8(images):
    return np.clip((np.asarray(images) + 1) / 2 * 255, 0, 255).astype("uint8")


def write_edit_grid(path, images, titles):
    """images float (R, C, H, W, ch) in [-1, 1] (a row per seed: source, then edits)."""
    io.save_figure(path, edit_grid_figure(to_uint8(images), titles))
    return path


def write_reweight(path, curve, word):
    io.save_figure(path, reweight_figure(curve["values"], curve["probability"], curve["ink"],
                                         word))
    return path


def write_numbers(output_dir, numbers, name="prompt_to_prompt.json"):
    path = os.path.join(output_dir, name)
    io.save_json(path, numbers)
    return path
