"""Each filter's strongest incoming and outgoing links by weight norm (the paper's circuits).

The strength of the link from filter g of conv j (feeding input channel c of conv k) to filter f
of conv k is ||W_k[:, :, c, f]||, as `circuits.channel_strengths` has it; the source of channel c
is its main-path origin (`lens.graph.conv_input_sources`: skips followed, conv1 -> conv2).
"""

import numpy as np

from keras_sd_interp.circuits.strength import channel_strengths, conv_kernels
from keras_sd_interp.lens.cache import model_cache
from keras_sd_interp.lens.graph import conv_input_sources
from keras_sd_interp.lens.taps import NUM_CONVS


def channel_sources(unet):
    """For every conv k, (in_channels, 2) int: the (conv, filter) each input channel comes
    from, (-1, -1) for the latent input. Computed once per model."""

    def build():
        table = []
        for k, kernel in enumerate(conv_kernels(unet)):
            rows = []
            for channel in range(kernel.shape[2]):
                sources = conv_input_sources(unet, k, channel)
                rows.append((sources[0].conv_index, sources[0].filter) if sources else (-1, -1))
            table.append(np.array(rows, np.int32))
        return table

    return model_cache(unet).get_or_build("atlas.channel_sources", build)


def unit_connections(unet, conv_index, num=8):
    """The strongest links of every filter of conv `conv_index`.

    Returns:
        list over filters f of {"incoming": [...], "outgoing": [...]}, each a list of at most
        `num` dicts {"conv": j, "filter": g, "strength": s}, strongest first.
    """
    kernels, sources = conv_kernels(unet), channel_sources(unet)
    kernel = kernels[conv_index]
    incoming = []
    for f in range(kernel.shape[3]):
        strengths = channel_strengths(kernel, f)
        links = [{"conv": int(sources[conv_index][c][0]), "filter": int(sources[conv_index][c][1]),
                  "strength": float(strengths[c])}
                 for c in np.argsort(-strengths) if sources[conv_index][c][0] >= 0]
        incoming.append(links[:num])
    outgoing = [[] for _ in range(kernel.shape[3])]
    for k in range(conv_index + 1, NUM_CONVS):
        fed = np.nonzero(sources[k][:, 0] == conv_index)[0]
        if not len(fed):
            continue
        norms = np.linalg.norm(kernels[k][:, :, fed, :], axis=(0, 1))   # (len(fed), out)
        for row, channel in enumerate(fed):
            f = int(sources[k][channel][1])
            for g in np.argsort(-norms[row])[:num]:
                outgoing[f].append({"conv": k, "filter": int(g), "strength": float(norms[row, g])})
    outgoing = [sorted(links, key=lambda link: -link["strength"])[:num] for links in outgoing]
    return [{"incoming": i, "outgoing": o} for i, o in zip(incoming, outgoing)]
