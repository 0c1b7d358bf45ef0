"""Figures of the filter visualizations: loss curves (grids of images: `grids.py`)."""

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

