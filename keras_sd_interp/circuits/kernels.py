"""Connecting kernels: how one visualized filter feeds the next along a circuit.

Between two visualized steps of a circuit, the later one is either a plain conv (its 3x3 slice
`W[:, :, c, f]` connects them directly) or a ResBlock, whose hidden conv1 sits in between.
`paper` mode multiplies the two 3x3 slices as matrices (`np.matmul(W_conv1_slice,
W_conv2_slice)`), which is not what two convolutions do. Corrected: the exact composition of the
two linear convs, the full 2-D convolution of the two slices (5x5), through the circuit's hidden
channel or summed over all hidden channels. (GroupNorm and swish between them are left out: the
kernel is the linear part of the path.)
"""

import numpy as np

from keras_sd_interp.circuits.strength import conv_kernels


def compose(first, second):
    """Kernel of conv `first` then conv `second` (cross-correlation, 'same' padding, no bias).

    Args:
        first: (3, 3) or (3, 3, hidden): slices from one input channel to the hidden channels.
        second: (3, 3) or (3, 3, hidden): slices from the hidden channels to one output filter.

    Returns:
        (5, 5): the full 2-D convolution of the two, summed over hidden channels.
    """
    first = np.asarray(first, np.float64).reshape(3, 3, -1)
    second = np.asarray(second, np.float64).reshape(3, 3, -1)
    size = first.shape[0] + second.shape[0] - 1
    composed = np.zeros((size, size))
    for i in range(3):
        for j in range(3):
            composed[i : i + 3, j : j + 3] += np.einsum("h,abh->ab", first[i, j], second)
    return composed


def connecting_kernels(unet, path, mode, hidden="circuit"):
    """The kernel between every pair of consecutive layer-level steps of one circuit.

    Args:
        unet: the SDUNet.
        path: the circuit's main path (`walk.main_path(steps)`), later convs first. Layer-level
            steps are plain convs and ResBlock conv2s; a conv2's conv1 is the step after it.
        mode: "paper" (3x3 matmul) or "corrected" (5x5 composition).
        hidden: corrected mode: "circuit" (the circuit's hidden channel) or "all".

    Returns:
        list of dicts {"later": step, "earlier": step, "kernel": array} (3x3 or 5x5).
    """
    kernels = conv_kernels(unet)
    pairs = []
    for later, hidden_step, earlier in _layer_pairs(path):
        out_filter = later["filter"]
        if hidden_step is None:  # a plain conv
            kernel = kernels[later["conv_index"]][:, :, earlier["input_channel"], out_filter]
        else:
            conv1, conv2 = kernels[hidden_step["conv_index"]], kernels[later["conv_index"]]
            in_channel, mid = earlier["input_channel"], hidden_step["filter"]
            if mode == "paper":
                kernel = np.matmul(conv1[:, :, in_channel, mid], conv2[:, :, mid, out_filter])
            elif hidden == "all":
                kernel = compose(conv1[:, :, in_channel, :], conv2[:, :, :, out_filter])
            else:
                kernel = compose(conv1[:, :, in_channel, mid], conv2[:, :, mid, out_filter])
        pairs.append({"later": later, "earlier": earlier, "kernel": np.asarray(kernel)})
    return pairs


def _layer_pairs(path):
    """(later, hidden conv1 step or None, earlier) for consecutive layer-level steps of `path`.

    `path` is the main path of a circuit (every conv step, later convs first).
    """
    triples = []
    i = 0
    while i + 1 < len(path):
        later = path[i]
        if later["role"] == "conv2" and i + 2 < len(path):
            triples.append((later, path[i + 1], path[i + 2]))
            i += 2
        elif later["role"] == "conv2":
            break
        else:
            triples.append((later, None, path[i + 1]))
            i += 1
    return triples
