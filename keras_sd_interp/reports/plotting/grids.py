"""Image grids: many images side by side, as one uint8 array or as a matplotlib figure."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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


def image_grid_figure(images, titles=None, columns=4, cell_inches=(3.0, 2.0), title_size=8,
                      full_range=False):
    """uint8 images (N, H, W[, C]) in a grid `columns` wide, with a title each (optional).

    Each cell is `cell_inches` (width, height). One-channel images are drawn in gray, stretched
    to each image's own min..max (matplotlib's default), or with `full_range` on 0..255.
    """
    rows = -(-len(images) // columns)
    size = (cell_inches[0] * columns, cell_inches[1] * rows)
    figure, axes = plt.subplots(rows, columns, figsize=size, squeeze=False)
    limits = {"vmin": 0, "vmax": 255} if full_range else {}
    for axis in axes.flat:
        axis.axis("off")
    for index, (axis, image) in enumerate(zip(axes.flat, images)):
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", **limits)
        if titles is not None:
            axis.set_title(titles[index], fontsize=title_size)
    figure.tight_layout()
    return figure
