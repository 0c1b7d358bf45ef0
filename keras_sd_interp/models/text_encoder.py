"""keras-cv's CLIP text encoder, rebuilt so that every layer's insides pass through sites.

Same sub-layers, same creation order and so the same weight order as keras-cv's
`TextEncoder` (`CLIPEmbedding`, 12 `CLIPEncoderLayer`s, a final `LayerNormalization`), so
keras-cv's `kcv_encoder.h5` loads unchanged; the tiny model's 6-layer encoder is built from the
same layers. Sites, for layer i (batch first, T tokens, D width, H heads):

    text.embed                     (batch, T, D)    token + position embeddings
    text.layer_{i}.resid_pre       (batch, T, D)    the residual stream entering layer i
    text.layer_{i}.attn.probs      (batch, H, T, T) causal self-attention probabilities
    text.layer_{i}.attn.z          (batch, T, D)    heads concatenated: the input of the output
                                                    projection (DiffQuickFix's keys)
    text.layer_{i}.attn.out        (batch, T, D)    the output projection's output
    text.layer_{i}.mlp.out         (batch, T, D)    the MLP's output (fc2)
    text.layer_{i}.resid_post      (batch, T, D)    the residual stream leaving layer i
    text.final_norm                (batch, T, D)    the encoder's output (the U-Net's context)
"""

import keras
from keras import ops
from keras_cv.src.models.stable_diffusion import text_encoder as kcv_text

from keras_sd_interp.hook_points import site

SD14_TEXT = dict(vocab_size=49408, width=768, num_layers=12, num_heads=12)
# SD v1.4's encoder at size "mini" (random weights only): its 12 layers, 12 heads, CLIP's
# vocabulary and context length, width 96 (= config.SD14_MINI.context_dim).
SD14_MINI_TEXT = dict(SD14_TEXT, width=96)


def text_layer_site(index, part=None):
    """"text.layer_0", or with a part ("attn.z", "mlp.out", ...) "text.layer_0.attn.z"."""
    return f"text.layer_{index}" if part is None else f"text.layer_{index}.{part}"


LAYER_PARTS = ("resid_pre", "attn.probs", "attn.z", "attn.out", "mlp.out", "resid_post")


def text_site_names(num_layers):
    """Every text-encoder site name in forward order, for an encoder of `num_layers` layers."""
    names = ["text.embed"]
    for i in range(num_layers):
        names += [text_layer_site(i, part) for part in LAYER_PARTS]
    return names + ["text.final_norm"]


def _sub(layer, suffix):
    return None if layer.site_name is None else f"{layer.site_name}.{suffix}"


class CLIPEmbedding(kcv_text.CLIPEmbedding):
    site_name = None

    def call(self, inputs):
        return site(self.site_name, super().call(inputs))


class FinalNorm(keras.layers.LayerNormalization):
    site_name = None

    def call(self, inputs):
        return site(self.site_name, super().call(inputs))


class CLIPAttention(kcv_text.CLIPAttention):
    """keras-cv's causal CLIP self-attention with its probabilities and head outputs exposed."""

    site_name = None

    def call(self, inputs, attention_mask=None):
        length = inputs.shape[1]
        if attention_mask is None and self.causal:
            attention_mask = ops.triu(
                ops.ones((1, 1, length, length), dtype=self.compute_dtype) * -float("inf"), k=1
            )
        query = self.reshape_states(self.q_proj(inputs) * self.scale, length, -1)
        key = self.reshape_states(self.k_proj(inputs), length, -1)
        value = self.reshape_states(self.v_proj(inputs), length, -1)
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))  # (batch, heads, T, T)
        probs = site(_sub(self, "probs"), ops.softmax(scores + attention_mask, axis=-1))
        heads = ops.transpose(ops.matmul(probs, value), (0, 2, 1, 3))  # (batch, T, heads, d)
        z = site(_sub(self, "z"), ops.reshape(heads, (-1, length, self.embed_dim)))
        return site(_sub(self, "out"), self.out_proj(z))


class CLIPEncoderLayer(kcv_text.CLIPEncoderLayer):
    """keras-cv's pre-norm CLIP layer; sub-layers created in keras-cv's order."""

    site_name = None

    def __init__(self, embed_dim, num_heads, activation=None, **kwargs):
        keras.layers.Layer.__init__(self, **kwargs)
        self.layer_norm1 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.clip_attn = CLIPAttention(embed_dim, num_heads, causal=True)
        self.layer_norm2 = keras.layers.LayerNormalization(epsilon=1e-5)
        self.fc1 = keras.layers.Dense(embed_dim * 4)
        self.fc2 = keras.layers.Dense(embed_dim)
        self.activation = activation

    def call(self, inputs):
        inputs = site(_sub(self, "resid_pre"), inputs)
        x = inputs + self.clip_attn(self.layer_norm1(inputs))
        mlp = site(_sub(self, "mlp.out"), self.fc2(self.activation(self.fc1(self.layer_norm2(x)))))
        return site(_sub(self, "resid_post"), x + mlp)


def build_text_encoder(vocab_size, max_length, width, num_layers, num_heads,
                       activation=kcv_text.quick_gelu, name=None):
    """CLIP text encoder with sites: inputs {"tokens", "positions"} (batch, max_length) int32
    -> (batch, max_length, width) float32. Layers as keras-cv's TextEncoder."""
    tokens = keras.layers.Input((max_length,), dtype="int32", name="tokens")
    positions = keras.layers.Input((max_length,), dtype="int32", name="positions")
    embedding = CLIPEmbedding(vocab_size, width, max_length)
    x = embedding([tokens, positions])
    encoder_layers = [CLIPEncoderLayer(width, num_heads, activation=activation)
                      for _ in range(num_layers)]
    for layer in encoder_layers:
        x = layer(x)
    final_norm = FinalNorm(epsilon=1e-5)
    model = keras.Model([tokens, positions], final_norm(x), name=name)
    embedding.site_name, final_norm.site_name = "text.embed", "text.final_norm"
    for i, layer in enumerate(encoder_layers):
        layer.site_name = text_layer_site(i)
        layer.clip_attn.site_name = text_layer_site(i, "attn")
    model.num_text_layers = num_layers
    return model


def build_sd14_text_encoder(max_length=77, size="full"):
    """keras-cv's SD v1.4 TextEncoder (random weights; load `kcv_encoder.h5` into it), or at
    size "mini" the same 12 layers at width 96 (random weights only)."""
    if size not in ("full", "mini"):
        raise ValueError(f"size={size!r}: choose 'full' or 'mini'")
    sizes = SD14_TEXT if size == "full" else SD14_MINI_TEXT
    return build_text_encoder(max_length=max_length, **sizes)
