"""Single-channel kernel strengths and the seeds of the circuits (the course's `l2norm.ipynb`).

The strength of input channel c of filter f in conv k is the Frobenius norm of the 3x3 slice
`W_k[:, :, c, f]`. Seeds: for each of the output conv's 4 filters its 15 strongest input
channels, merged and sorted by strength, strongest first.
"""

import dataclasses
import numbers

import numpy as np

from keras_sd_interp.lens import taps
from keras_sd_interp.lens.cache import model_cache


@dataclasses.dataclass(frozen=True)
class Seed:
    """Input `channel` of `filter` in the output conv (51), with its kernel strength."""

    channel: int
    filter: int
    strength: float


def conv_kernels(unet):
    """The 52 kernels as NumPy arrays (3, 3, in, out), read once per model."""
    return model_cache(unet).get_or_build(
        "circuits.conv_kernels",
        lambda: [taps.conv_kernel(unet, k) for k in range(taps.NUM_CONVS)],
    )


def channel_strengths(kernel, filter_index):
    """||W[:, :, c, f]||_2 for every input channel c: (in_channels,)."""
    return np.linalg.norm(kernel[:, :, :, filter_index], axis=(0, 1))


def output_seeds(unet, per_filter=15):
    """Seeds of the circuits, strongest first: a list of Seed (4 * per_filter of them).

    per_filter: input channels kept per output filter, 1..in_channels of the output conv.
    """
    kernel = conv_kernels(unet)[taps.NUM_CONVS - 1]
    channels = kernel.shape[2]
    if isinstance(per_filter, bool) or not isinstance(per_filter, numbers.Integral) \
            or not 1 <= per_filter <= channels:
        raise ValueError(f"per_filter={per_filter!r} must be an integer in 1..{channels} (the "
                         f"output conv's input channels; the paper: 15)")
    seeds = []
    for filter_index in range(kernel.shape[-1]):
        strengths = channel_strengths(kernel, filter_index)
        for channel in np.argsort(strengths)[-per_filter:]:
            seeds.append(Seed(int(channel), filter_index, float(strengths[channel])))
    return sorted(seeds, key=lambda seed: seed.strength, reverse=True)
