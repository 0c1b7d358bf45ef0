"""The objective: the mean activation of one channel, one loss term per batch item.

Items of a batch may look at different tensors (any mix of layers and convs). Each item's loss
reads only its own row, so its gradient is the gradient it would have alone.
"""

import numpy as np
import tensorflow as tf


def channel_table(targets):
    """Per-item channel and mask for each distinct address.

    Returns:
        addresses: sorted list of the distinct addresses.
        channels: int32 (n_items, n_addresses), the target channel (0 where unused).
        masks: float32 (n_items, n_addresses), 1 where the item looks at that address.
    """
    addresses = sorted({t.address for t in targets})
    channels = np.zeros((len(targets), len(addresses)), np.int32)
    masks = np.zeros((len(targets), len(addresses)), np.float32)
    for item, target in enumerate(targets):
        column = addresses.index(target.address)
        channels[item, column] = target.filter
        masks[item, column] = 1.0
    return addresses, channels, masks


def item_losses(activations, addresses, channels, masks):
    """Mean activation of each item's own channel: (n_items,) float32.

    Args:
        activations: dict address -> tensor (n_items, ..., channels) from a tap model.
        addresses, channels, masks: from `channel_table`.
    """
    losses = 0.0
    for column, address in enumerate(addresses):
        acts = activations[address]
        means = tf.reduce_mean(acts, axis=list(range(1, len(acts.shape) - 1)))  # (n, C)
        picked = tf.gather(means, channels[:, column], batch_dims=1)
        losses += picked * masks[:, column]
    return losses
