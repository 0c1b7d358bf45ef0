"""Many filters to files, a batch at a time, resuming from what is on disk.

For each target: `{stem}.png` (the decoded image), `{stem}_latent.npy` (the final latent),
`{stem}_loss.npy` and `{stem}_loss.png` (the loss per step). The PNG is written last, so a
target whose PNG exists is done and is skipped unless `overwrite`.
"""

import os

from keras_sd_interp import io
from keras_sd_interp.lens import taps
from keras_sd_interp.featureviz.optimize import optimize_latents
from keras_sd_interp.featureviz.render import decode_to_uint8
from keras_sd_interp.reports.plotting.featureviz import loss_curve_figure


def pending_targets(targets, out_dir, overwrite=False):
    """The targets whose image is not on disk yet (all of them with `overwrite`), deduplicated."""
    unique = list(dict.fromkeys(targets))
    if overwrite:
        return unique
    return [t for t in unique if not os.path.exists(os.path.join(out_dir, t.stem + ".png"))]


def _depth(unet, target):
    """Position of the target's tap in forward order (shallow batches run a short network)."""
    names = list(taps.tap_shapes(unet))
    return names.index(taps.resolve(unet, target.address))


def visualize_filters(unet, decoder, targets, settings, out_dir, batch_size=16, overwrite=False,
                      progress=True, loss_plots=True):
    """Optimizes, decodes and writes every pending target; returns the stems written.

    Targets are batched in forward order, so a batch of shallow filters runs a short network.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    todo = sorted(pending_targets(targets, out_dir, overwrite), key=lambda t: _depth(unet, t))
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        result = optimize_latents(unet, batch, settings, progress=progress)
        images = decode_to_uint8(decoder, result.latents, settings.mode)
        for item, target in enumerate(batch):
            path = os.path.join(out_dir, target.stem)
            io.save_npy(path + "_latent.npy", result.latents[item])
            io.save_npy(path + "_loss.npy", result.losses[:, item])
            if loss_plots:
                figure = loss_curve_figure(result.losses[:, item], target)
                io.save_figure(path + "_loss.png", figure)
            io.save_image(path + ".png", images[item])
    return [t.stem for t in todo]
