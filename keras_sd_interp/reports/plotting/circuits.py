"""Figures of the circuit tools: connecting kernels and branch-specialization scatter plots."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def weights_figure(kernel, title=None):
    """The paper's kernel plot: RdBu centred on zero at the largest |value|, each value printed
    (two decimals as in the paper; three significant digits when all are below 0.1, where two
    decimals would print only zeros), axes off, 15x10 inches. `kernel` is (k, k)."""
    kernel = np.asarray(kernel)
    limit = float(np.abs(kernel).max()) or 1.0
    value_format = "{:.2f}" if limit >= 0.1 else "{:.3g}"
    figure, axis = plt.subplots(figsize=(15, 10))
    axis.imshow(kernel, cmap="RdBu", vmin=-limit, vmax=limit)
    for (row, column), value in np.ndenumerate(kernel):
        axis.text(column, row, value_format.format(value), ha="center", va="center", fontsize=20)
    axis.axis("off")
    if title:
        axis.set_title(title, fontsize=18)
    return figure


def branch_svd_figure(left, right, conv_a, conv_b, marked_left=(), marked_right=(), title=None):
    """Two scatter plots side by side (10x5), as in the paper's branch-specialization figure.

    Args:
        left: (2, n) projections of conv a's side (row k = singular vector k).
        right: (n, 2) projections of conv b's side.
        conv_a, conv_b: conv indices, for the titles.
        marked_left, marked_right: indices drawn in red (filters looked at by eye).
    """
    figure, axes = plt.subplots(1, 2, figsize=(10, 5))
    sides = [(np.asarray(left).T, marked_left, f"conv {conv_a}"),
             (np.asarray(right), marked_right, f"conv {conv_b}")]
    for axis, (points, marked, name) in zip(axes, sides):
        colors = ["red" if i in set(marked) else "tab:blue" for i in range(len(points))]
        axis.scatter(points[:, 1], points[:, 0], c=colors, s=12)
        for i, (y, x) in enumerate(points):
            axis.annotate(str(i), (x, y), fontsize=6, color=colors[i])
        axis.set_xlabel("Singular Vector 1")
        axis.set_ylabel("Singular Vector 0")
        axis.set_title(name)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
