"""Filter visualizations into files, a batch at a time, resuming from what is on disk.

    files = FilterFiles(out_dir)
    experiments.filters.visualize_into(unet, decoder, targets, settings, files)   # computes

For each target: `{stem}.png` (the decoded image), `{stem}_latent.npy` (the final latent),
`{stem}_loss.npy` and `{stem}_loss.png` (the loss per step). The PNG is written last, so a
target whose PNG exists and decodes (`io.image_is_valid`) is done and is skipped unless
`overwrite`; a zero-byte or corrupt PNG is recomputed.
"""

import os

from keras_sd_interp import io
from keras_sd_interp.reports.plotting.featureviz import loss_curve_figure


class FilterFiles:
    """The files of many filter visualizations in one folder.

    Args:
        out_dir: the folder.
        overwrite: count nothing as written (redo every target).
        loss_plots: also draw `{stem}_loss.png`.
    """

    def __init__(self, out_dir, overwrite=False, loss_plots=True):
        self.out_dir, self.overwrite, self.loss_plots = out_dir, overwrite, loss_plots

    def path(self, target, suffix=".png"):
        return os.path.join(self.out_dir, target.stem + suffix)

    def pending(self, targets):
        """The targets whose image is not on disk yet or does not decode (all of them with
        `overwrite`), deduplicated, in the given order."""
        unique = list(dict.fromkeys(targets))
        if self.overwrite:
            return unique
        return [t for t in unique if not io.image_is_valid(self.path(t))]

    def write(self, batch, result, images):
        """One batch of `visualize_batches`: targets, DescentResult, uint8 images (n, H, W, C).
        Returns the stems written."""
        for item, target in enumerate(batch):
            io.save_npy(self.path(target, "_latent.npy"), result.latents[item])
            io.save_npy(self.path(target, "_loss.npy"), result.losses[:, item])
            if self.loss_plots:
                figure = loss_curve_figure(result.losses[:, item], target)
                io.save_figure(self.path(target, "_loss.png"), figure)
            io.save_image(self.path(target), images[item])
        return [t.stem for t in batch]
