"""The U-Net of the annotated-diffusion example (Hugging Face blog), in Keras 3.

Input: noisy images (B, 28, 28, 1) in [-1, 1] and integer timesteps (B,). Output: the predicted
noise, (B, 28, 28, 1). Layout, as in the example, with `dim` base channels and multipliers (1, 2, 4):

  7x7 conv -> for each level: 2 ResNet blocks (time-conditioned), linear attention, downsample
  -> bottleneck: ResNet block, full attention, ResNet block
  -> for each level, mirrored: 2 ResNet blocks on [x, skip], linear attention, upsample
  -> ResNet block on [x, first features] -> 1x1 conv.

Resolutions 28 -> 14 -> 7 (the last level keeps 7x7). Two departures from the example, chosen
for a 2-core CPU: plain convolutions instead of weight-standardised ones, and attention heads
sized by `heads` x `head_dim` (the example uses 4 x 32).
"""

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="keras_sd_interp")
class SinusoidalTimeEmbedding(layers.Layer):
    """Integer timesteps (B,) -> sinusoidal embeddings (B, dim): [sin(t w_k), cos(t w_k)]."""

    def __init__(self, dim, **kwargs):
        super().__init__(**kwargs)
        self.dim = dim

    def call(self, timesteps):
        half = self.dim // 2
        scale = math.log(10000.0) / (half - 1)
        frequencies = ops.exp(ops.arange(half, dtype="float32") * -scale)
        angles = ops.cast(timesteps, "float32")[:, None] * frequencies[None, :]
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim}


@keras.saving.register_keras_serializable(package="keras_sd_interp")
class LinearAttention(layers.Layer):
    """Linear attention (Shen et al.): softmax over channels for q, over positions for k.

    Cost grows linearly with the number of positions, so it runs at full resolution.
    Input and output: (B, H, W, C).
    """

    def __init__(self, heads, head_dim, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.head_dim = heads, head_dim
        self.to_qkv = layers.Conv2D(3 * heads * head_dim, 1, use_bias=False)
        self.norm = layers.GroupNormalization(groups=1, epsilon=1e-5)

    def build(self, input_shape):
        self.to_qkv.build(input_shape)
        self.to_out = layers.Conv2D(input_shape[-1], 1)
        self.to_out.build(input_shape[:-1] + (self.heads * self.head_dim,))
        self.norm.build(input_shape)

    def call(self, x):
        height, width = ops.shape(x)[1], ops.shape(x)[2]
        qkv = self.to_qkv(x)
        qkv = ops.reshape(qkv, (-1, height * width, 3, self.heads, self.head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # each (B, N, heads, d)
        q = ops.softmax(q, axis=-1) * (self.head_dim**-0.5)
        k = ops.softmax(k, axis=1)
        context = ops.einsum("bnhd,bnhe->bhde", k, v)
        out = ops.einsum("bhde,bnhd->bnhe", context, q)
        out = ops.reshape(out, (-1, height, width, self.heads * self.head_dim))
        return self.norm(self.to_out(out))

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "head_dim": self.head_dim}


@keras.saving.register_keras_serializable(package="keras_sd_interp")
class FullAttention(layers.Layer):
    """Multi-head softmax self-attention over all positions. Input and output: (B, H, W, C)."""

    def __init__(self, heads, head_dim, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.head_dim = heads, head_dim
        self.to_qkv = layers.Conv2D(3 * heads * head_dim, 1, use_bias=False)

    def build(self, input_shape):
        self.to_qkv.build(input_shape)
        self.to_out = layers.Conv2D(input_shape[-1], 1)
        self.to_out.build(input_shape[:-1] + (self.heads * self.head_dim,))

    def call(self, x):
        height, width = ops.shape(x)[1], ops.shape(x)[2]
        qkv = ops.reshape(self.to_qkv(x), (-1, height * width, 3, self.heads, self.head_dim))
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        scores = ops.einsum("bihd,bjhd->bhij", q * (self.head_dim**-0.5), k)
        out = ops.einsum("bhij,bjhd->bihd", ops.softmax(scores, axis=-1), v)
        return self.to_out(ops.reshape(out, (-1, height, width, self.heads * self.head_dim)))

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "head_dim": self.head_dim}


def resnet_block(x, time_embedding, channels, groups, name):
    """Two (conv, group norm, SiLU) blocks; the time embedding sets a scale and shift in between.

    x: (B, H, W, C_in); time_embedding: (B, 4 * dim). Returns (B, H, W, channels).
    """
    scale_shift = layers.Dense(2 * channels, name=f"{name}_time")(layers.Activation("silu")(time_embedding))
    scale, shift = ops.split(scale_shift[:, None, None, :], 2, axis=-1)
    h = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv1")(x)
    h = layers.GroupNormalization(groups, name=f"{name}_norm1")(h)
    h = layers.Activation("silu")(h * (scale + 1.0) + shift)
    h = layers.Conv2D(channels, 3, padding="same", name=f"{name}_conv2")(h)
    h = layers.Activation("silu")(layers.GroupNormalization(groups, name=f"{name}_norm2")(h))
    residual = x if x.shape[-1] == channels else layers.Conv2D(channels, 1, name=f"{name}_skip")(x)
    return h + residual


def pre_norm_residual(x, attention, name):
    """x + attention(group_norm(x)), the example's Residual(PreNorm(attention))."""
    return x + attention(layers.GroupNormalization(1, name=f"{name}_prenorm")(x))


def build_unet(dim=16, channel_mults=(1, 2, 4), groups=4, heads=4, head_dim=16, image_size=28):
    """Builds the noise-predicting U-Net as a functional Keras model.

    Args:
      dim: base number of channels (the example uses 28; 16 trains in under an hour here).
      channel_mults: width of each level relative to `dim`.
      groups: groups of every GroupNormalization in the ResNet blocks (must divide `dim`).
      heads, head_dim: attention heads and the width of each.

    Returns:
      keras.Model mapping [images (B, S, S, 1), timesteps (B,) int32] -> noise (B, S, S, 1).
    """
    images = keras.Input((image_size, image_size, 1), name="noisy_images")
    timesteps = keras.Input((), dtype="int32", name="timesteps")

    time_dim = 4 * dim
    t = SinusoidalTimeEmbedding(dim, name="time_sinusoidal")(timesteps)
    t = layers.Dense(time_dim, activation="gelu", name="time_mlp1")(t)
    t = layers.Dense(time_dim, name="time_mlp2")(t)

    x = layers.Conv2D(dim, 7, padding="same", name="init_conv")(images)
    first_features = x
    widths = [dim] + [dim * mult for mult in channel_mults]
    levels = list(zip(widths[:-1], widths[1:]))

    skips = []
    for level, (width_in, width_out) in enumerate(levels):
        is_last = level == len(levels) - 1
        x = resnet_block(x, t, width_in, groups, f"down{level}_res1")
        skips.append(x)
        x = resnet_block(x, t, width_in, groups, f"down{level}_res2")
        x = pre_norm_residual(x, LinearAttention(heads, head_dim, name=f"down{level}_attn"), f"down{level}")
        skips.append(x)
        stride = 1 if is_last else 2
        x = layers.Conv2D(width_out, 3 if is_last else 4, strides=stride, padding="same",
                          name=f"down{level}_sample")(x)

    x = resnet_block(x, t, widths[-1], groups, "mid_res1")
    x = pre_norm_residual(x, FullAttention(heads, head_dim, name="mid_attn"), "mid")
    x = resnet_block(x, t, widths[-1], groups, "mid_res2")

    for level, (width_in, width_out) in reversed(list(enumerate(levels))):
        is_first = level == 0
        x = resnet_block(layers.Concatenate()([x, skips.pop()]), t, width_out, groups, f"up{level}_res1")
        x = resnet_block(layers.Concatenate()([x, skips.pop()]), t, width_out, groups, f"up{level}_res2")
        x = pre_norm_residual(x, LinearAttention(heads, head_dim, name=f"up{level}_attn"), f"up{level}")
        if is_first:
            x = layers.Conv2D(width_in, 3, padding="same", name=f"up{level}_sample")(x)
        else:
            x = layers.UpSampling2D(2, interpolation="nearest")(x)
            x = layers.Conv2D(width_in, 3, padding="same", name=f"up{level}_sample")(x)

    x = resnet_block(layers.Concatenate()([x, first_features]), t, dim, groups, "final_res")
    # Zero-initialised so training starts from "predict no noise" (loss 1) instead of a random map.
    noise = layers.Conv2D(1, 1, kernel_initializer="zeros", name="final_conv")(x)
    return keras.Model([images, timesteps], noise, name="ddpm_unet")
