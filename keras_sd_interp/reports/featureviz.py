"""Many filters to files, a batch at a time, resuming from what is on disk.

For each target: `{stem}.png` (the decoded image), `{stem}_latent.npy` (the final latent),
`{stem}_loss.npy` and `{stem}_loss.png` (the loss per step). The PNG is written last, so a
target whose PNG exists and decodes (`io.image_is_valid`) is done and is skipped unless
`overwrite`; a zero-byte or corrupt PNG is recomputed.
"""

import os

from keras_sd_interp import io
from keras_sd_interp.featureviz.batches import visualize_batches
from keras_sd_interp.reports.plotting.featureviz import loss_curve_figure


def pending_targets(targets, out_dir, overwrite=False):
    """The targets whose image is not on disk yet (or does not decode) (all of them with `overwrite`), deduplicated."""
    unique = list(dict.fromkeys(targets))
    if overwrite:
        return unique
    return [t for t in unique if not io.image_is_valid(os.path.join(out_dir, t.stem + ".png"))]


def visualize_filters(unet, decoder, targets, settings, out_dir, batch_size=16, overwrite=False,
                      progress=True, loss_plots=True):
    """Optimizes, decodes and writes every pending target; returns the stems written.

    Targets are batched in forward order, so a batch of shallow filters runs a short network.
    """
    written = []
    todo = pending_targets(targets, out_dir, overwrite)
    for batch, result, images in visualize_batches(unet, decoder, todo, settings, batch_size,
                                                   progress):
        for item, target in enumerate(batch):
            path = os.path.join(out_dir, target.stem)
            io.save_npy(path + "_latent.npy", result.latents[item])
            io.save_npy(path + "_loss.npy", result.losses[:, item])
            if loss_plots:
                figure = loss_curve_figure(result.losses[:, item], target)
                io.save_figure(path + "_loss.png", figure)
            io.save_image(path + ".png", images[item])
        written += [t.stem for t in batch]
    return written
