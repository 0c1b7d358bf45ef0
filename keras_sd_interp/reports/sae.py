"""SAE feature cards: each feature's top examples beside its visualizations, as one PNG."""

import numpy as np

from keras_sd_interp.io import save_image, save_json
from keras_sd_interp.reports.plotting.grids import image_grid


def write_feature_cards(path, rows, columns):
    """Writes a grid: one row per feature, `columns` images each (uint8 (H, W[, 1]) arrays,
    e.g. 3 top examples then one visualization per preset). Returns the grid (uint8)."""
    images = [image for row in rows for image in row]
    grid = image_grid(np.stack(images), columns=columns, gap=2, background=128)
    save_image(path, grid)
    return grid


def write_results(path, results):
    save_json(path, results)
