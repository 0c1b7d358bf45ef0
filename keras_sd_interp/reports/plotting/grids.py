"""Image grids: many images side by side in one picture."""

import numpy as np


def image_grid(images, columns=4, gap=2, background=255):
    """Tiles images uint8 (N, H, W[, C]) into one uint8 array (rows*(H+gap)-gap, ...).

    Empty cells and the gaps between images are filled with `background`.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    count, height, width, channels = images.shape
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    grid = np.full(
        (rows * (height + gap) - gap, columns * (width + gap) - gap, channels), background,
        np.uint8,
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        grid[top:top + height, left:left + width] = image
    return grid
