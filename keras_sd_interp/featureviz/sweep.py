"""Many filters to files, a batch at a time, resuming from what is on disk.

For each target: `{stem}.png` (the decoded image), `{stem}_latent.npy` (the final latent),
`{stem}_loss.npy` and `{stem}_loss.png` (the loss per step). The PNG is written last, so a
target whose PNG exists is done and is skipped unless `overwrite`.
"""

import os

from keras_sd_interp import io
from keras_sd_interp.featureviz.optimize import optimize_latents
from keras_sd_interp.featureviz.render import decode_to_uint8
from keras_sd_interp.plotting.featureviz import loss_curve_figure


def pending_targets(targets, out_dir, overwrite=False):
    """The targets whose image is not on disk yet (all of them with `overwrite`), deduplicated."""
    unique = list(dict.fromkeys(targets))
    if overwrite:
        return unique
    return [t for t in unique if not os.path.exists(os.path.join(out_dir, t.stem + ".png"))]


def visualize_filters(unet, decoder, targets, settings, out_dir, batch_size=16, overwrite=False,
                      progress=True):
    """Optimizes, decodes and writes every pending target; returns the stems written."""
    if batch_size <= 0:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    todo = pending_targets(targets, out_dir, overwrite)
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        result = optimize_latents(unet, batch, settings, progress=progress)
        images = decode_to_uint8(decoder, result.latents, settings.mode)
        for item, target in enumerate(batch):
            path = os.path.join(out_dir, target.stem)
            io.save_npy(path + "_latent.npy", result.latents[item])
            io.save_npy(path + "_loss.npy", result.losses[:, item])
            io.save_figure(path + "_loss.png", loss_curve_figure(result.losses[:, item], target))
            io.save_image(path + ".png", images[item])
    return [t.stem for t in todo]
