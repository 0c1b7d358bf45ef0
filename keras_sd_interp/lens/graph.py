"""Where a channel really comes from: the U-Net's graph, read channel by channel.

This is the one module that reads the functional graph Keras built (a layer's inbound nodes):
`layer_inputs(unet)` gives, for every layer index, the layers feeding it.

Channel c of a conv's input is traced back through the layers that keep channel indices:
a skip concatenation (`concat([x, skip])`: channels past x's width come from the skip), a
SpatialTransformer (x + attention(x): c stays c), a ResBlock's residual add (c stays c through
an identity residual; a 1x1 projection is followed to its strongest input channel), the output
norm and activation. It stops at the first conv met on each route. The first source returned is
the main path (a ResBlock's output leads to its conv2); the others are residual branches.
"""

import dataclasses

import numpy as np

from keras_sd_interp.lens import taps
from keras_sd_interp.lens.cache import model_cache
from keras_sd_interp.models import layers as sd_layers


@dataclasses.dataclass(frozen=True)
class Source:
    """Filter `filter` of conv `conv_index` feeds the channel; `route` names the hops taken."""

    conv_index: int
    filter: int
    route: tuple = ()


def inventory(unet):
    """`taps.conv_inventory(unet)` as a tuple, computed once per model (walks ask for it often)."""
    return model_cache(unet).get_or_build(
        "graph.conv_inventory", lambda: tuple(taps.conv_inventory(unet))
    )


def layer_inputs(unet):
    """For every layer index, the indices of the layers feeding its main input, in call order."""
    return model_cache(unet).get_or_build("graph.layer_inputs", lambda: _read_layer_inputs(unet))


def _read_layer_inputs(unet):
    position = {id(layer): i for i, layer in enumerate(unet.layers)}
    inputs = []
    for layer in unet.layers:
        nodes = layer._inbound_nodes[0].parent_nodes
        parents = [position[id(node.operation)] for node in nodes]
        inputs.append(parents if isinstance(layer, sd_layers.Concatenate) else parents[:1])
    return inputs


def _convs_by_layer(unet):
    def build():
        by_layer = {}
        for entry in inventory(unet):
            by_layer.setdefault(entry.layer_index, []).append(entry.conv_index)
        return by_layer

    return model_cache(unet).get_or_build("graph.convs_by_layer", build)


def _projection_kernels(unet):
    """Layer index -> the 1x1 residual projection kernel (in, out) of ResBlocks that have one."""
    return model_cache(unet).get_or_build("graph.projection_kernels", lambda: {
        i: layer.residual_projection.weights[0].numpy()[0, 0]
        for i, layer in enumerate(unet.layers)
        if isinstance(layer, sd_layers.ResBlock)
        and hasattr(layer.residual_projection, "weights")
    })


def layer_output_sources(unet, layer_index, channel, route=()):
    """Sources of channel `channel` of `model.layers[layer_index]`'s output: list of Source."""
    layer = unet.layers[layer_index]
    parents = layer_inputs(unet)[layer_index]
    convs = _convs_by_layer(unet).get(layer_index, [])
    if isinstance(layer, sd_layers.ResBlock):
        main = [Source(convs[1], channel, route)]
        projection = _projection_kernels(unet).get(layer_index)
        if projection is not None:  # a 1x1 conv when the width changes
            hop = (int(np.argmax(np.abs(projection[:, channel]))), "residual_projection")
        else:
            hop = (channel, "residual")
        return main + layer_output_sources(unet, parents[0], hop[0], route + (hop[1],))
    if convs:  # a plain conv layer: conv_in, downsample, upsample, conv_out
        return [Source(convs[0], channel, route)]
    if isinstance(layer, sd_layers.Concatenate):
        first_width = unet.layers[parents[0]].output.shape[-1]
        if channel < first_width:
            return layer_output_sources(unet, parents[0], channel, route)
        return layer_output_sources(unet, parents[1], channel - first_width, route + ("skip",))
    if isinstance(layer, sd_layers.SpatialTransformer):
        return layer_output_sources(unet, parents[0], channel, route + ("attention",))
    if parents:  # output norm and activation keep channels
        return layer_output_sources(unet, parents[0], channel, route)
    return []  # the latent input


def conv_input_sources(unet, conv_index, channel):
    """Sources of input channel `channel` of conv `conv_index`; the first is the main path."""
    entry = inventory(unet)[taps.check_conv_index(conv_index)]
    in_channels = entry.kernel_shape[2]
    if not 0 <= channel < in_channels:
        raise ValueError(
            f"channel {channel} out of range for conv {conv_index}: it has input channels "
            f"0..{in_channels - 1}"
        )
    if entry.role == "conv2":
        return [Source(conv_index - 1, channel)]
    parent = layer_inputs(unet)[entry.layer_index][0]
    return layer_output_sources(unet, parent, channel)


def input_segments(unet, conv_index):
    """Main-path origin of conv `conv_index`'s input channels, as contiguous segments.

    Returns:
        list of (start, stop, source_conv_index, route) covering 0..in_channels, where channel
        channel start + i comes from filter (start + i - start_of_its_filters) of that conv.
    """
    in_channels = inventory(unet)[taps.check_conv_index(conv_index)].kernel_shape[2]
    segments = []
    for channel in range(in_channels):
        source = conv_input_sources(unet, conv_index, channel)[0]
        offset = channel - source.filter
        if segments and segments[-1][2] == source.conv_index and segments[-1][4] == offset:
            segments[-1][1] = channel + 1
        else:
            segments.append([channel, channel + 1, source.conv_index, source.route, offset])
    return [tuple(segment[:4]) for segment in segments]
