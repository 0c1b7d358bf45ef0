"""keras-cv's Stable Diffusion U-Net layers, rebuilt so that their insides pass through sites.

Each class subclasses its keras-cv namesake and keeps its class name, its sub-layers, their
creation order and so the order of `layer.weights`: keras-cv's legacy `.h5` weight files load
unchanged, and Keras auto-names the layers exactly as it names keras-cv's.

What changes:
- every layer reports its output through `site(layer.site_name, ...)`;
- ResBlock exposes its first conv (raw: `.conv1_raw`; after the time-embedding add: `.conv1`),
  its second conv before the residual add (`.conv2`) and the residual branch (`.residual`);
- CrossAttention exposes its attention probabilities per head (`.probs`, shape
  (batch, heads, queries, keys)) and uses the real batch size in its reshapes, so an empty
  context (max_text_length 0) works for batches larger than one;
- widths, heads and GroupNormalization groups come from a UNetConfig.

`site_name` is None until `unet.assign_site_names` names the layers by position.
"""

import math

import tensorflow as tf
from keras import layers
from keras import ops
from keras_cv.src.models.stable_diffusion import diffusion_model as kcv_unet
from keras_cv.src.models.stable_diffusion import padded_conv2d as kcv_conv

from keras_sd_interp.hook_points import site


def _sub_site(layer, suffix):
    return None if layer.site_name is None else f"{layer.site_name}.{suffix}"


class _SiteOutput:
    """Mixin: the layer's output passes through the site named `site_name`."""

    site_name = None

    def call(self, inputs):
        return site(self.site_name, super().call(inputs))


class Dense(_SiteOutput, layers.Dense):
    pass


class Activation(_SiteOutput, layers.Activation):
    pass


class Concatenate(_SiteOutput, layers.Concatenate):
    pass


class GroupNormalization(_SiteOutput, layers.GroupNormalization):
    pass


class PaddedConv2D(_SiteOutput, kcv_conv.PaddedConv2D):
    pass


class Upsample(kcv_unet.Upsample):
    """2x nearest upsampling then a 3x3 conv; output site = the conv's output."""

    site_name = None

    def __init__(self, channels, **kwargs):
        layers.Layer.__init__(self, **kwargs)
        self.ups = layers.UpSampling2D(2)
        self.conv = kcv_conv.PaddedConv2D(channels, 3, padding=1)

    def call(self, inputs):
        return site(self.site_name, self.conv(self.ups(inputs)))


class ResBlock(kcv_unet.ResBlock):
    """GroupNorm-swish-conv1, + time embedding, GroupNorm-swish-conv2, + residual.

    Sites: `.conv1_raw` and `.conv1` (batch, h, w, out), `.conv2` (batch, h, w, out),
    `.residual` (batch, h, w, out), and the output (conv2 + residual).
    """

    site_name = None

    def __init__(self, output_dim, norm_groups=32, **kwargs):
        layers.Layer.__init__(self, **kwargs)
        self.output_dim = output_dim
        self.entry_flow = [
            layers.GroupNormalization(groups=norm_groups, epsilon=1e-5),
            layers.Activation("swish"),
            kcv_conv.PaddedConv2D(output_dim, 3, padding=1),
        ]
        self.embedding_flow = [
            layers.Activation("swish"),
            layers.Dense(output_dim),
        ]
        self.exit_flow = [
            layers.GroupNormalization(groups=norm_groups, epsilon=1e-5),
            layers.Activation("swish"),
            kcv_conv.PaddedConv2D(output_dim, 3, padding=1),
        ]

    @property
    def conv1(self):
        return self.entry_flow[2]

    @property
    def conv2(self):
        return self.exit_flow[2]

    def call(self, inputs):
        inputs, embeddings = inputs
        x = inputs
        for layer in self.entry_flow:
            x = layer(x)
        x = site(_sub_site(self, "conv1_raw"), x)
        for layer in self.embedding_flow:
            embeddings = layer(embeddings)
        x = site(_sub_site(self, "conv1"), x + embeddings[:, None, None])
        for layer in self.exit_flow:
            x = layer(x)
        x = site(_sub_site(self, "conv2"), x)
        residual = site(_sub_site(self, "residual"), self.residual_projection(inputs))
        return site(self.site_name, x + residual)


class CrossAttention(kcv_unet.CrossAttention):
    """Multi-head attention; queries from `inputs`, keys and values from `context` (or inputs).

    Sites: `.q` (batch, queries, heads*head_size), `.k` and `.v` (batch, keys, heads*head_size)
    the projections (LocoGen's keys and values), `.probs` (batch, heads, queries, keys) after the
    softmax, and the output.
    """

    site_name = None

    def call(self, inputs, context=None):
        if context is None:
            context = inputs
        batch = ops.shape(inputs)[0]
        queries, keys = inputs.shape[1], context.shape[1]
        q = site(_sub_site(self, "q"), self.to_q(inputs))
        k = site(_sub_site(self, "k"), self.to_k(context))
        v = site(_sub_site(self, "v"), self.to_v(context))
        q = ops.reshape(q, (batch, queries, self.num_heads, self.head_size))
        k = ops.reshape(k, (batch, keys, self.num_heads, self.head_size))
        v = ops.reshape(v, (batch, keys, self.num_heads, self.head_size))
        q = ops.transpose(q, (0, 2, 1, 3))  # (batch, heads, queries, head_size)
        k = ops.transpose(k, (0, 2, 3, 1))  # (batch, heads, head_size, keys)
        v = ops.transpose(v, (0, 2, 1, 3))  # (batch, heads, keys, head_size)
        probs = tf.nn.softmax(ops.matmul(q, k) * self.scale, axis=-1)
        probs = site(_sub_site(self, "probs"), probs)
        attended = ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))
        attended = ops.reshape(attended, (batch, queries, self.num_heads * self.head_size))
        return site(self.site_name, self.out_proj(attended))


class BasicTransformerBlock(kcv_unet.BasicTransformerBlock):
    """Self-attention, cross-attention and GEGLU feed-forward, each with a residual add.

    Site: `.ff`, the feed-forward's output before its residual add (named by the transformer).
    """

    site_name = None

    def __init__(self, dim, num_heads, head_size, **kwargs):
        layers.Layer.__init__(self, **kwargs)
        self.norm1 = layers.LayerNormalization(epsilon=1e-5)
        self.attn1 = CrossAttention(num_heads, head_size)
        self.norm2 = layers.LayerNormalization(epsilon=1e-5)
        self.attn2 = CrossAttention(num_heads, head_size)
        self.norm3 = layers.LayerNormalization(epsilon=1e-5)
        self.geglu = kcv_unet.GEGLU(dim * 4)
        self.dense = layers.Dense(dim)

    def call(self, inputs):
        inputs, context = inputs
        x = self.attn1(self.norm1(inputs), context=None) + inputs
        x = self.attn2(self.norm2(x), context=context) + x
        return site(_sub_site(self, "ff"), self.dense(self.geglu(self.norm3(x)))) + x


class SpatialTransformer(kcv_unet.SpatialTransformer):
    """GroupNorm, 1x1 conv, transformer block over the h*w positions, 1x1 conv, + input.

    Sites: `.attn1` / `.attn2` (self- and cross-attention outputs), `.attn1.probs`,
    `.attn2.probs`, `.attn1.q/k/v`, `.attn2.q/k/v`, `.ff` (feed-forward), and the output.
    """

    site_name = None

    def __init__(self, num_heads, head_size, norm_groups=32, **kwargs):
        layers.Layer.__init__(self, **kwargs)
        channels = num_heads * head_size
        self.norm = layers.GroupNormalization(groups=norm_groups, epsilon=1e-5)
        self.proj1 = kcv_conv.PaddedConv2D(channels, 1)
        self.transformer_block = BasicTransformerBlock(channels, num_heads, head_size)
        self.proj2 = kcv_conv.PaddedConv2D(channels, 1)

    def call(self, inputs):
        return site(self.site_name, super().call(inputs))


def timestep_embedding(timesteps, dim, max_period=10000):
    """keras-cv's sinusoidal timestep embedding, batched.

    Args:
        timesteps: float tensor (batch,), training step indices 0..999.
        dim: embedding length (320 for SD).

    Returns:
        (batch, dim) tensor: concat([cos(t * f), sin(t * f)]), f = max_period ** (-k / (dim/2)).
    """
    half = dim // 2
    freqs = ops.exp(-math.log(max_period) * ops.arange(0, half, dtype="float32") / half)
    args = ops.cast(ops.reshape(timesteps, (-1, 1)), "float32") * freqs[None]
    return ops.concatenate([ops.cos(args), ops.sin(args)], axis=-1)
