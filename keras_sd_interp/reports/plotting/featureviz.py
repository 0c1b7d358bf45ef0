"""Figures of the filter visualizations: loss curves and grids of images."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def loss_curve_figure(losses, target):
    """The objective per step of one filter; `target` is a FilterTarget (for the title)."""
    figure, axis = plt.subplots(figsize=(4, 3))
    axis.plot(losses)
    axis.set_xlabel("step")
    axis.set_ylabel(f"mean of channel {target.filter}")
    axis.set_title(f"{target.address} filter {target.filter}", fontsize=9)
    figure.tight_layout()
    return figure


def image_grid_figure(images, titles, columns=4):
    """uint8 images (n, H, W, C) side by side with a title each."""
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 2 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, image, title in zip(axes.flat, images, titles):
        axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        axis.set_title(title, fontsize=8)
    figure.tight_layout()
    return figure
