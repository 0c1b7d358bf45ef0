"""Taps: the one way to reach inside the U-Net, by paper layer index, conv index or name.

Addresses:
- an int, or "layer_12": the output of `model.layers[12]` (the paper's layer index);
- "conv_9": the output of the 9th 3x3 kernel (0..51) in layer order, i.e. `res_block_3.conv2`;
- a readable name: "res_block_3", "res_block_3.conv1", "res_block_3.conv1_raw",
  "res_block_3.conv2", "res_block_3.residual", "spatial_transformer_3.attn2.probs", ...
  (`lens.list_sites(unet)` lists them all with their shapes).

    taps = tap_model(unet, ["layer_12", "conv_9", "spatial_transformer_3.attn2.probs"])
    acts = taps([latent, t_emb, context])     # dict: address -> (batch, ...) tensor

A tap model is a Keras model built once per (unet, addresses) and cached; it runs the U-Net
only as far as the deepest tapped layer, and works eagerly, under `tf.GradientTape` and
inside `tf.function`. `run_with_cache` and `run_with_hooks` read and edit sites during an
ordinary full forward.
"""

import dataclasses
import numbers
import re

import keras
import numpy as np
import tensorflow as tf

from keras_sd_interp.models import layers as sd_layers
from keras_sd_interp.lens.cache import model_cache
from keras_sd_interp.lens.sites import hooks
from keras_sd_interp.models.unet import NUM_LAYERS, layer_site_names

NUM_CONVS = 52
# Resolution level of each conv's output (index into UNetConfig.channels; None: the latent),
# the same in every preset because only widths differ. Lets scripts check filter indices
# before building a model (tests compare it with the built tiny U-Net).
CONV_LEVELS = (0,) * 6 + (1,) * 5 + (2,) * 27 + (1,) * 7 + (0,) * 6 + (None,)


def conv_filter_count(config, conv_index):
    """Filters (output channels) of conv `conv_index` in a preset, without building it.

    `config`: a preset name ("sd14", "tiny") or a UNetConfig. Returns an int (sd14 conv 9: 640).
    """
    from keras_sd_interp.models.config import get_config

    config = get_config(config)
    level = CONV_LEVELS[check_conv_index(conv_index)]
    return config.latent_channels if level is None else config.channels[level]


@dataclasses.dataclass(frozen=True)
class ConvEntry:
    """One 3x3 kernel of the U-Net.

    Attributes:
        conv_index: position among the 52 3x3 kernels in layer order (0..51).
        layer_index: position of its layer in `model.layers` (the paper's layer index).
        layer_name: readable name of that layer ("res_block_3").
        name: the tap of this conv's output ("conv_in", "res_block_3.conv1", "upsample_0").
        role: "plain" (a layer that is one conv), "conv1" or "conv2" (a ResBlock's convs).
        weight_index: position of the kernel in `layer.weights` (the course's (layer, index)).
        kernel_shape: (3, 3, in_channels, out_channels).
    """

    conv_index: int
    layer_index: int
    layer_name: str
    name: str
    role: str
    weight_index: int
    kernel_shape: tuple


def conv_inventory(unet):
    """The 52 3x3 kernels of `unet` in layer order: a list of ConvEntry."""
    entries = []
    for layer_index, (layer, layer_name) in enumerate(zip(unet.layers, layer_site_names(unet))):
        for weight_index, weight in enumerate(layer.weights):
            shape = tuple(weight.shape)
            if len(shape) != 4 or shape[:2] != (3, 3):
                continue
            if isinstance(layer, sd_layers.ResBlock):
                role = "conv1" if weight is layer.conv1.conv2d.kernel else "conv2"
                name = f"{layer_name}.{role}"
            else:
                role, name = "plain", layer_name
            entries.append(
                ConvEntry(len(entries), layer_index, layer_name, name, role, weight_index, shape)
            )
    return entries


def conv_kernel(unet, conv_index):
    """The kernel of conv `conv_index` as a NumPy array (3, 3, in_channels, out_channels)."""
    entry = conv_inventory(unet)[check_conv_index(conv_index)]
    return unet.layers[entry.layer_index].weights[entry.weight_index].numpy()


def conv_bearing_layers(unet):
    """Sorted layer indices that hold at least one 3x3 kernel (4, 6, 9, 11, ..., 65)."""
    return sorted({entry.layer_index for entry in conv_inventory(unet)})


def check_layer_index(layer_index):
    if not 0 <= layer_index < NUM_LAYERS:
        raise ValueError(
            f"layer {layer_index} out of range: the U-Net has layers 0..{NUM_LAYERS - 1}"
        )
    return layer_index


def check_conv_index(conv_index):
    if not 0 <= conv_index < NUM_CONVS:
        raise ValueError(
            f"conv {conv_index} out of range: the U-Net has 3x3 convs 0..{NUM_CONVS - 1}"
        )
    return conv_index


def layer_name(unet, layer_index):
    """Readable name of `model.layers[layer_index]`."""
    return layer_site_names(unet)[check_layer_index(layer_index)]


def conv_name(unet, conv_index):
    """Tap name of the output of conv `conv_index` ("res_block_3.conv2" for conv 9)."""
    return conv_inventory(unet)[check_conv_index(conv_index)].name


def _checked_address(address):
    """An address as int (any integer type, NumPy's included) or str; TypeError otherwise."""
    if isinstance(address, (bool, np.bool_)):
        raise TypeError(f"address {address!r} is a bool, not a layer index: give an int layer "
                        f"index 0..{NUM_LAYERS - 1}, 'layer_N', 'conv_N' or a site name")
    if isinstance(address, numbers.Integral):
        return int(address)
    if not isinstance(address, str):
        raise TypeError(f"address {address!r} ({type(address).__name__}) is not an int layer "
                        f"index 0..{NUM_LAYERS - 1}, 'layer_N', 'conv_N' or a site name")
    return address


def address_list(addresses):
    """Addresses as a list: one bare address (an int or a str like "conv_9") becomes [it]."""
    if isinstance(addresses, (str, bool, np.bool_, numbers.Integral)):
        addresses = [addresses]
    return [_checked_address(address) for address in addresses]


def resolve(unet, address):
    """Turns an address (int layer index, "layer_12", "conv_9" or a name) into a site name."""
    address = _checked_address(address)
    if isinstance(address, int):
        return layer_name(unet, address)
    match = re.fullmatch(r"(layer|conv)[_:](\d+)", address)
    if match:
        number = int(match.group(2))
        return layer_name(unet, number) if match.group(1) == "layer" else conv_name(unet, number)
    known = tap_shapes(unet)
    if address not in known:
        close = [name for name in known if name.startswith(address.split(".")[0])][:8]
        raise ValueError(
            f"unknown tap {address!r}: use a layer index 0..{NUM_LAYERS - 1}, 'layer_N', "
            f"'conv_N' (N in 0..{NUM_CONVS - 1}) or a name from lens.list_sites(unet)"
            + (f"; names starting alike: {close}" if close else "")
        )
    return address


def _address_key(address):
    """Dict key of an address in results: ints become "layer_N" (tf.function needs str keys)."""
    return f"layer_{address}" if isinstance(address, int) else address


def _owning_layer(name):
    """The layer-level site a site belongs to: "res_block_3.conv1" -> "res_block_3"."""
    for layer_level in ("time_embed.", "out."):
        if name.startswith(layer_level):
            return name
    return name.split(".")[0]


def tap_shapes(unet):
    """Every tappable site of `unet` in forward order: dict name -> shape without the batch axis.

    Computed once per model by tracing (not running) a forward.
    """
    stored = model_cache(unet)
    if "taps.shapes" not in stored:
        recorded = {}

        @tf.function
        def trace(inputs):
            with hooks(record="all") as cache:
                unet(inputs)
            recorded.update({name: tuple(t.shape[1:]) for name, t in cache.items()})
            return 0

        trace.get_concrete_function([tf.TensorSpec(x.shape, x.dtype) for x in unet.inputs])
        shapes = {x.name: tuple(x.shape[1:]) for x in unet.inputs}
        shapes.update(recorded)
        stored["taps.shapes"] = shapes
    return stored["taps.shapes"]


def check_channel(unet, address, channel):
    """Raises ValueError unless `channel` indexes the last axis of the tapped tensor."""
    name = resolve(unet, address)
    channels = tap_shapes(unet)[name][-1]
    if not 0 <= channel < channels:
        raise ValueError(
            f"filter {channel} out of range for {name}: it has channels 0..{channels - 1}"
        )
    return channel


class TapModel(keras.Model):
    """Runs the U-Net as far as needed and returns the tapped tensors.

    Call with `[latent, timestep_embedding, context]` (the U-Net's inputs, batched); returns a
    dict address -> tensor (batch, ...), one entry per address given at construction (an int
    address L is keyed "layer_L").
    """

    def __init__(self, unet, addresses, **kwargs):
        super().__init__(**kwargs)
        self.addresses = [_address_key(address) for address in address_list(addresses)]
        self.site_names = [resolve(unet, address) for address in self.addresses]
        names = layer_site_names(unet)
        input_names = [x.name for x in unet.inputs]
        owners = sorted(
            {names.index(_owning_layer(n)) for n in self.site_names if n not in input_names}
        )
        self._owner_names = [names[i] for i in owners]
        outputs = [unet.layers[i].output for i in owners] or [unet.outputs[0]]
        self.truncated = keras.Model(unet.inputs, outputs)
        self._input_names = input_names
        self._internal = sorted(set(self.site_names) - set(self._owner_names) - set(input_names))

    def call(self, inputs):
        with hooks(record=self._internal) as cache:
            outputs = self.truncated(inputs)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        found = dict(zip(self._owner_names, outputs))
        found.update(cache)
        found.update(zip(self._input_names, inputs))
        return {address: found[name] for address, name in zip(self.addresses, self.site_names)}


def tap_model(unet, addresses):
    """A cached TapModel of `unet` for `addresses` (a list of addresses, see module doc; one
    bare address is taken as a list of one)."""
    addresses = address_list(addresses)
    key = ("taps.tap_model", tuple(addresses))
    return model_cache(unet).get_or_build(key, lambda: TapModel(unet, addresses))


def run_with_cache(unet, inputs, addresses):
    """Full forward; returns (output (batch, h, w, 4), dict address -> tapped tensor)."""
    addresses = address_list(addresses)
    names = [resolve(unet, address) for address in addresses]
    with hooks(record=names) as cache:
        output = unet(inputs)
    return output, {_address_key(a): cache[name] for a, name in zip(addresses, names)}


def run_with_hooks(unet, inputs, edits, record=()):
    """Full forward with edits {address: fn or [fns]}; returns (output, dict of records)."""
    named_edits = {resolve(unet, address): fns for address, fns in edits.items()}
    record = address_list(record)
    names = [resolve(unet, address) for address in record]
    with hooks(record=names, edits=named_edits) as cache:
        output = unet(inputs)
    return output, {_address_key(a): cache[name] for a, name in zip(record, names)}
