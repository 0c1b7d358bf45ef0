"""What a visualization looks at: one channel of one tapped tensor, and the file it goes to.

The course could only tap whole layers (`model.layers[L].output`), so a ResBlock meant its
output (conv2 plus residual). Here any tappable tensor works; a ResBlock's two convs are
`res_block_N.conv1` / `res_block_N.conv2`. File stems follow the course's names:
`layer_{L}_filter_{F}` for a whole layer, `layer_{L}_conv1_filter_{F}` for a ResBlock conv.
A batch of targets is one objective (`objectives.filter_batch` over `target_table`).
"""

import dataclasses

import numpy as np

from keras_sd_interp.lens import taps


@dataclasses.dataclass(frozen=True)
class FilterTarget:
    """One channel to visualize.

    Attributes:
        address: a tap address (see `taps.resolve`), e.g. "layer_12" or "res_block_3.conv1".
        filter: the channel (last axis) whose mean activation is the objective.
        stem: file name without extension, e.g. "layer_12_filter_354".
    """

    address: str
    filter: int
    stem: str


def check_conv_layer(unet, layer_index):
    """Raises ValueError unless `layer_index` is a layer holding at least one 3x3 conv."""
    taps.check_layer_index(layer_index)
    bearing = taps.conv_bearing_layers(unet)
    if layer_index not in bearing:
        raise ValueError(
            f"layer {layer_index} has no convs: conv-bearing layers are "
            + ", ".join(str(i) for i in bearing)
        )
    return layer_index


def layer_target(unet, layer_index, filter_index):
    """The whole output of `model.layers[layer_index]`, as the course visualized it."""
    check_conv_layer(unet, layer_index)
    address = f"layer_{layer_index}"
    taps.check_channel(unet, address, filter_index)
    return FilterTarget(address, filter_index, f"layer_{layer_index}_filter_{filter_index}")


def conv_target(unet, conv_index, filter_index, mode="corrected"):
    """The output of conv `conv_index` (0..51).

    `paper` mode can only see whole layers: a ResBlock conv maps to its layer's output.
    Corrected mode taps the conv itself (`res_block_N.conv1` is after the time-embedding add).
    """
    entry = taps.conv_inventory(unet)[taps.check_conv_index(conv_index)]
    if mode == "paper" or entry.role == "plain":
        return layer_target(unet, entry.layer_index, filter_index)
    taps.check_channel(unet, entry.name, filter_index)
    stem = f"layer_{entry.layer_index}_{entry.role}_filter_{filter_index}"
    return FilterTarget(entry.name, filter_index, stem)


def tap_target(unet, address, filter_index):
    """Any tappable tensor (a name from `taps.list_taps`); the stem is built from its name."""
    name = taps.resolve(unet, address)
    taps.check_channel(unet, name, filter_index)
    return FilterTarget(name, filter_index, f"{name.replace('.', '_')}_filter_{filter_index}")


def target_table(targets, addresses=None):
    """Each item's channel per distinct address, for `objectives.filter_batch`.

    `addresses`: the addresses to tap (a superset of the targets'; None: just theirs), so that
    one compiled step can serve batches of targets on different sites.

    Returns:
        addresses: sorted list of the distinct addresses.
        indices: int32 (n_items, n_addresses), the target channel (0 where unused).
        weights: float32 (n_items, n_addresses), 1 where the item looks at that address.
    """
    needed = {t.address for t in targets}
    if addresses is not None and not needed <= set(addresses):
        raise ValueError(f"addresses {sorted(addresses)} lack {sorted(needed - set(addresses))}")
    addresses = sorted(needed if addresses is None else set(addresses))
    indices = np.zeros((len(targets), len(addresses)), np.int32)
    weights = np.zeros((len(targets), len(addresses)), np.float32)
    for item, target in enumerate(targets):
        column = addresses.index(target.address)
        indices[item, column] = target.filter
        weights[item, column] = 1.0
    return addresses, indices, weights


def forward_order(unet, targets):
    """`targets` sorted by the position of their tap in forward order (stable), so that a batch
    of shallow filters runs a short network."""
    names = list(taps.tap_shapes(unet))
    return sorted(targets, key=lambda t: names.index(taps.resolve(unet, t.address)))
