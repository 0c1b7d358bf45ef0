"""Figures of the Fashion-MNIST DDPM and the jump experiment. Everything here draws given arrays.

(Grids of samples: `grids.image_grid_figure`.)"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from keras_sd_interp.data.pixels import to_uint8  # noqa: E402

KIND_LABELS = {"x_t": "standard x_t", "x0_hat": "predicted x0", "jump": "jump"}


def _gray(image):
    """An image in [-1, 1], (H, W, 1) or (H, W), as uint8 (H, W) for drawing."""
    image = to_uint8(image)
    return image[..., 0] if image.shape[-1] == 1 else image


def _upscale(image, scale):
    """uint8 (H, W) -> uint8 (H * scale, W * scale), nearest neighbour."""
    return np.kron(image, np.ones((scale, scale), np.uint8))


def jump_frames(x_all, x0_hat_all, jump_points, jump_images, frame_every=5, scale=4, hold=10):
    """GIF frames for one chain: [x_t | predicted x0 | latest jump], one frame every few steps.

    x_all, x0_hat_all: (T, 28, 28, 1) the chain's images at each step (index = step);
    jump_points: (J,) steps; jump_images: (J, 28, 28, 1) where each jump ended.
    The third panel shows the jump from the most recent jump point at or above t (black before).
    Returns a list of uint8 frames (H, W) with a caption row on top.
    """
    num_steps = len(x_all)
    steps = list(range(num_steps - 1, -1, -frame_every))
    if steps[-1] != 0:
        steps.append(0)
    size = 28 * scale
    frames = []
    for t in steps:
        done = [j for j, point in enumerate(jump_points) if point >= t]
        jump = _gray(jump_images[done[-1]]) if done else np.zeros((28, 28), np.uint8)
        panels = [_gray(x_all[t]), _gray(x0_hat_all[t]), jump]
        row = np.concatenate([np.pad(_upscale(p, scale), ((0, 0), (2, 2)), constant_values=128)
                              for p in panels], axis=1)
        canvas = Image.fromarray(np.full((size + 16, row.shape[1]), 255, np.uint8))
        canvas.paste(Image.fromarray(row), (0, 16))
        draw = ImageDraw.Draw(canvas)
        for k, label in enumerate(["x_t", "pred x0", "jump"]):
            draw.text((k * (size + 4) + 4, 2), f"{label} t={t}" if k < 2 else label, fill=0)
        frames.append(np.asarray(canvas))
    return frames + [frames[-1]] * hold


def jump_strip_figure(x_t, x0_hat, jump, final, jump_points, class_names=None):
    """A grid: rows x_t / predicted x0 / jump, one column per jump point, then the final sample.

    x_t, x0_hat, jump: (J, 28, 28, 1) for one chain; final: (28, 28, 1).
    class_names: optional dict {kind: list of J names} written under each image.
    """
    columns = len(jump_points) + 1
    figure, axes = plt.subplots(3, columns, figsize=(1.3 * columns, 4.4))
    for row, (kind, images) in enumerate([("x_t", x_t), ("x0_hat", x0_hat), ("jump", jump)]):
        for col in range(columns):
            ax = axes[row, col]
            ax.set_xticks([]), ax.set_yticks([])
            if col == columns - 1:
                ax.imshow(_gray(final), cmap="gray", vmin=0, vmax=255)
                if row == 0:
                    ax.set_title("final", fontsize=8)
                continue
            ax.imshow(_gray(images[col]), cmap="gray", vmin=0, vmax=255)
            if row == 0:
                ax.set_title(f"t={jump_points[col]}", fontsize=8)
            if class_names:
                ax.set_xlabel(class_names[kind][col], fontsize=7)
        axes[row, 0].set_ylabel(KIND_LABELS[kind], fontsize=8)
    figure.tight_layout()
    return figure


def cumulative_betas_figure(train_betas, schedules):
    """Cumulative beta sums along the reverse chain: the standard schedule and each jump's.

    train_betas: (T,); schedules: {jump point t: betas (m,) in forward order}.
    x axis: reverse steps taken; every curve ends at the same total (the fairness rule).
    """
    figure, ax = plt.subplots(figsize=(6, 4))
    ax.plot(np.cumsum(train_betas[::-1]), color="black", lw=2, label="standard")
    for t, betas in schedules.items():
        ax.plot(np.cumsum(betas[::-1]), lw=1, marker=".", ms=3, label=f"jump at t={t}")
    ax.set_xlabel("reverse steps taken")
    ax.set_ylabel("cumulative sum of betas")
    ax.legend(fontsize=7)
    ax.set_title("Beta schedules of the jumps (same total)")
    return figure


def agreement_figure(jump_points, shares, num_chains):
    """The experiment's answer: share of images whose judge class equals the final sample's.

    jump_points: (J,); shares: {"x_t" | "x0_hat" | "jump": (J,)}.
    """
    figure, ax = plt.subplots(figsize=(6, 4))
    for kind, marker in (("x_t", "o"), ("x0_hat", "s"), ("jump", "^")):
        ax.plot(jump_points, shares[kind], marker=marker, label=KIND_LABELS[kind])
    ax.axhline(0.1, color="gray", ls=":", lw=1, label="chance (10 classes)")
    ax.invert_xaxis()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("training step t of the jump point (noisier to the left)")
    ax.set_ylabel("share with the final sample's judge class")
    ax.set_title(f"What the chain already knows ({num_chains} chains)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return figure

