"""Figures of prompt-to-prompt: a grid of source + edits with titles, and the reweight curve.
Everything here draws given arrays."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_sd_interp.reports.plotting.grids import image_grid_figure  # noqa: E402


def edit_grid_figure(rows, titles):
    """rows: uint8 (R, C, H, W, ch) (each row one image: source then its edits); titles: C
    column titles (the prompts, or condition names)."""
    rows = np.asarray(rows)
    flat = rows.reshape((-1,) + rows.shape[2:])
    cell_titles = list(titles) + [""] * (len(flat) - len(titles))
    return image_grid_figure(flat, cell_titles, columns=rows.shape[1], cell_inches=(2.4, 1.4),
                             full_range=True)


def reweight_figure(values, probability, ink, word):
    """The judge's probability of `word`'s class in its cell and the cell's ink, per weight."""
    figure, left = plt.subplots(figsize=(5, 3.2))
    left.plot(values, probability, "o-", color="tab:blue")
    left.set_xlabel(f"weight of '{word}' (equalizer)")
    left.set_ylabel("judge probability", color="tab:blue")
    right = left.twinx()
    right.plot(values, ink, "s--", color="tab:red")
    right.set_ylabel("mean ink of its cell", color="tab:red")
    figure.tight_layout()
    return figure
