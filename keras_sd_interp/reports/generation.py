"""Files of generated images: a prompt's grid, and the tiny model's judged prompt accuracy
(`prompt_accuracy.json`) with a grid of its first pair images."""

import os

from keras_sd_interp import io
from keras_sd_interp.reports.plotting.grids import image_grid


def write_prompt_grid(images, output, scale=4):
    """Saves uint8 images (n, H, W, C) as one PNG grid, 4 wide, upscaled `scale` times (nearest
    neighbour); returns `output`."""
    grid = image_grid(images, columns=4).repeat(scale, 0).repeat(scale, 1)
    io.save_image(output, grid)
    return output


def write_prompt_accuracy(scores, pair_images, output_dir):
    """Writes `prompt_accuracy.json` (the scores of `training.tiny_eval.evaluate`) and
    `pairs_grid.png` (the first 40 pair images, uint8 (n, 32, 64, 1)) in `output_dir`."""
    io.save_json(os.path.join(output_dir, "prompt_accuracy.json"), scores)
    grid = image_grid(pair_images[:40], columns=8).repeat(3, 0).repeat(3, 1)
    io.save_image(os.path.join(output_dir, "pairs_grid.png"), grid)
