"""Many filters, a batch at a time: optimize, then decode, shallow targets first.

    for batch, result, images in visualize_batches(unet, decoder, targets, settings):
        ...  # batch: FilterTargets; result: DescentResult; images: uint8 (len(batch), H, W, C)

Targets are batched in forward order, so a batch of shallow filters runs a short network.
Writing the results to files, resumably, is `reports.featureviz.visualize_filters`.
"""

from keras_sd_interp.featureviz.optimize import optimize_latents
from keras_sd_interp.featureviz.render import decode_to_uint8
from keras_sd_interp.lens import taps


def forward_order(unet, targets):
    """`targets` sorted by the position of their tap in forward order (stable)."""
    names = list(taps.tap_shapes(unet))
    return sorted(targets, key=lambda t: names.index(taps.resolve(unet, t.address)))


def visualize_batches(unet, decoder, targets, settings, batch_size=16, progress=True):
    """Yields (batch, DescentResult, uint8 images) for `targets` in forward order, `batch_size`
    targets at a time."""
    if batch_size <= 0:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    ordered = forward_order(unet, targets)
    for start in range(0, len(ordered), batch_size):
        batch = ordered[start : start + batch_size]
        result = optimize_latents(unet, batch, settings, progress=progress)
        yield batch, result, decode_to_uint8(decoder, result.latents, settings.mode)
