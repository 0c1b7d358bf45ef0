"""The Stable Diffusion v1.x U-Net, built like keras-cv's `DiffusionModel` but from the rebuilt
layers, so that every internal tensor is a named site (see `lens/sites.py`).

The functional graph is the same as keras-cv's, op for op and in the same order, so
`model.layers` has the same 66 entries: `model.layers[12]` is the paper's layer 12, and
keras-cv's `.h5` weight files load unchanged.
"""

from keras import layers
from keras_cv.src.models.stable_diffusion.diffusion_model import DiffusionModel

from keras_sd_interp.models import layers as sd_layers
from keras_sd_interp.models.config import get_config

NUM_LAYERS = 66  # entries of `model.layers` (the paper's layer indices 0..65)
NUM_RES_BLOCKS = 22
NUM_TRANSFORMERS = 16  # spatial transformers, each with attn1 (self) and attn2 (cross)


def _named(stem, index, part):
    return f"{stem}_{index}" if part is None else f"{stem}_{index}.{part}"


def res_block_site(index, part=None):
    """"res_block_3", or with a part ("conv1", "conv2", "residual") "res_block_3.conv1"."""
    return _named("res_block", index, part)


def transformer_site(index, part=None):
    """"spatial_transformer_3", or with a part "spatial_transformer_3.attn2.probs"."""
    return _named("spatial_transformer", index, part)


# Readable names by kind, given in layer order (fixed by position, never from `layer.name`,
# which Keras numbers per session).
_KIND_NAMES = {
    "InputLayer": None,  # named after the input itself
    "Dense": ["time_embed.dense_0", "time_embed.dense_1"],
    "Activation": ["time_embed.act", "out.act"],
    "GroupNormalization": ["out.norm"],
    "PaddedConv2D": ["conv_in", "downsample_0", "downsample_1", "downsample_2", "conv_out"],
    "ResBlock": [res_block_site(i) for i in range(NUM_RES_BLOCKS)],
    "SpatialTransformer": [transformer_site(i) for i in range(NUM_TRANSFORMERS)],
    "Concatenate": [f"concat_{i}" for i in range(12)],
    "Upsample": [f"upsample_{i}" for i in range(3)],
}


def layer_site_stems():
    """Every named U-Net layer ("conv_in", "res_block_3", "spatial_transformer_8", ...), known
    without building one: the stems of the U-Net's site names."""
    return [name for names in _KIND_NAMES.values() if names for name in names]


class SDUNet(DiffusionModel):
    """keras-cv's Stable Diffusion U-Net with every internal tensor reachable.

    Inputs: `[latent (batch, H/f, W/f, 4), timestep_embedding (batch, time_embedding_dim),
    context (batch, max_text_length, context_dim)]` with f the config's latent factor.
    Output: predicted noise, (batch, H/f, W/f, 4).

    Args:
        img_height, img_width: image size in pixels (multiples of the config's
            `image_multiple()`: 64 for sd14, 32 for tiny).
        max_text_length: context length (77 for SD prompts; 0 for the paper's empty context).
        config: a preset name ('sd14', 'tiny') or a UNetConfig.
        name: Keras model name.
    """

    def __init__(self, img_height, img_width, max_text_length, config="sd14", name=None):
        config = get_config(config)
        config.check_image_size(img_height, img_width)
        if max_text_length < 0:
            raise ValueError(f"max_text_length={max_text_length} must be >= 0")
        self.config = config
        self.img_height, self.img_width = img_height, img_width
        self.max_text_length = max_text_length
        inputs, output = _build_graph(config, img_height, img_width, max_text_length)
        # Skip keras-cv's __init__ (fixed SD widths, downloads); build the functional model.
        super(DiffusionModel, self).__init__(inputs, output, name=name)
        assign_site_names(self)


def _build_graph(config, img_height, img_width, max_text_length):
    """The keras-cv DiffusionModel graph at the config's widths. Returns (inputs, output)."""
    c1, c2, c3 = config.channels
    h1, h2, h3 = config.head_sizes()
    heads, groups = config.num_heads, config.norm_groups
    factor = config.latent_factor

    context = layers.Input((max_text_length, config.context_dim), name="context")
    t_embed_input = layers.Input((config.time_embedding_dim,), name="timestep_embedding")
    latent = layers.Input(
        (img_height // factor, img_width // factor, config.latent_channels), name="latent"
    )

    def res_block(width, x):
        return sd_layers.ResBlock(width, norm_groups=groups)([x, t_emb])

    def transformer(head_size, x):
        return sd_layers.SpatialTransformer(heads, head_size, norm_groups=groups)([x, context])

    t_emb = sd_layers.Dense(config.time_hidden_dim)(t_embed_input)
    t_emb = sd_layers.Activation("swish")(t_emb)
    t_emb = sd_layers.Dense(config.time_hidden_dim)(t_emb)

    # Downsampling flow
    skips = []
    x = sd_layers.PaddedConv2D(c1, kernel_size=3, padding=1)(latent)
    skips.append(x)
    for width, head_size in ((c1, h1), (c2, h2), (c3, h3)):
        for _ in range(2):
            x = transformer(head_size, res_block(width, x))
            skips.append(x)
        x = sd_layers.PaddedConv2D(width, 3, strides=2, padding=1)(x)
        skips.append(x)
    for _ in range(2):
        x = res_block(c3, x)
        skips.append(x)

    # Middle flow
    x = res_block(c3, transformer(h3, res_block(c3, x)))

    # Upsampling flow: concat([x, skip]), the upsampling path first.
    for _ in range(3):
        x = res_block(c3, sd_layers.Concatenate()([x, skips.pop()]))
    x = sd_layers.Upsample(c3)(x)
    for width, head_size, upsample in ((c3, h3, True), (c2, h2, True), (c1, h1, False)):
        for _ in range(3):
            x = res_block(width, sd_layers.Concatenate()([x, skips.pop()]))
            x = transformer(head_size, x)
        if upsample:
            x = sd_layers.Upsample(width)(x)

    # Exit flow
    x = sd_layers.GroupNormalization(groups=groups, epsilon=1e-5)(x)
    x = sd_layers.Activation("swish")(x)
    output = sd_layers.PaddedConv2D(config.latent_channels, kernel_size=3, padding=1)(x)
    return [latent, t_embed_input, context], output


def layer_site_names(model):
    """Readable name of every entry of `model.layers`, by position: a list of 66 strings."""
    counters = {}
    names = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind not in _KIND_NAMES:
            raise ValueError(f"unexpected layer kind {kind} in the U-Net")
        if _KIND_NAMES[kind] is None:
            names.append(layer.name)  # the inputs: latent, timestep_embedding, context
            continue
        ordinal = counters.get(kind, 0)
        counters[kind] = ordinal + 1
        names.append(_KIND_NAMES[kind][ordinal])
    return names


def assign_site_names(model):
    """Gives every layer (and every attention layer inside a transformer) its site name."""
    for layer, name in zip(model.layers, layer_site_names(model)):
        layer.site_name = name
        if isinstance(layer, sd_layers.SpatialTransformer):
            block = layer.transformer_block
            block.attn1.site_name = f"{name}.attn1"
            block.attn2.site_name = f"{name}.attn2"
            block.site_name = name  # its feed-forward is `{name}.ff`


def ordinal_of(name):
    """The index in a site name: "spatial_transformer_3.attn2.probs" -> 3, "res_block_12" -> 12."""
    return int(name.split(".")[0].rsplit("_", 1)[1])
