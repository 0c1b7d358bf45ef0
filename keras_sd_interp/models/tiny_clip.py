"""The tiny CLIP: keras-cv's CLIP classes at small width, for the captioned compositions.

It is a `keras_cv.models.CLIP` (same inputs `{"images", "token_ids", "padding_mask"}`, same
`image_encoder` / `text_encoder` / `clip_head` sub-models and config keys), so the code that
scores with keras-cv's full CLIP scores with it too (`image_embeddings`, `text_embeddings`).
Two things differ from keras-cv 0.9's text tower, both as OpenAI's CLIP (and SD's text
encoder) have them:
- the attention mask is causal (keras-cv adds `triu(ones)`, a +1 bias on the current and later
  tokens, so every token sees the whole prompt);
- the final layer norm's epsilon is 1e-5 (keras-cv: Keras' default 1e-3).
So its text tower computes exactly what the rebuilt text encoder with sites
(`models/text_encoder.py`) computes: `text_encoder_from_clip` copies it there, and that copy is
the tiny pipeline's (frozen) text encoder, visible to the lens.

Images: the 32x64 compositions, padded with black to 64x64 (16 rows above and below), grey
tiled to 3 channels, in [-1, 1] (`to_clip_images`). Text: the word tokenizer on
`CLIP_VOCABULARY` (end token last, so that keras-cv's argmax pooling finds it).

    clip = load_tiny_clip()                                   # the shipped one
    image_emb = image_embeddings(clip, to_clip_images(images))    # (n, 64), unit norm
    text_emb = text_embeddings(clip, *clip_tokens(tokenizer, captions))
"""

import dataclasses
import hashlib
import json
import os

import keras
import numpy as np
from keras import ops
from keras_cv.src.models.feature_extractor.clip.clip_image_model import CLIPImageEncoder
from keras_cv.src.models.feature_extractor.clip.clip_model import CLIP, CLIPHead
from keras_cv.src.models.feature_extractor.clip.clip_text_model import CLIPTextEncoder

from keras_sd_interp.models import bundled
from keras_sd_interp.models import text_encoder as site_text_encoder
from keras_sd_interp.models.tiny_text import CLIP_VOCABULARY, WordTokenizer

ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "tiny_clip")
COMPONENT = "clip"
IMAGE_SIZE = 64


@dataclasses.dataclass(frozen=True)
class TinyCLIPConfig:
    """keras_cv.models.CLIP's constructor arguments at the tiny model's sizes.

    `transformer_width` must be the tiny U-Net's context width (64); the vision tower has
    `vision_width // 64` heads (keras-cv's rule).
    """

    embed_dim: int = 64
    image_resolution: int = IMAGE_SIZE
    vision_layers: int = 3
    vision_width: int = 64
    vision_patch_size: int = 8
    context_length: int = 13  # "a X on the left and a Y on the right" with start, end
    vocab_size: int = len(CLIP_VOCABULARY)
    transformer_width: int = 64
    transformer_heads: int = 4
    transformer_layers: int = 2


class CausalCLIPTextEncoder(CLIPTextEncoder):
    """keras-cv's CLIPTextEncoder with a causal mask and a final norm at epsilon 1e-5.

    call(token_ids (batch, L), attention_mask (batch, L) 0/1) -> (batch, embed_dim): the final
    norm's features at the first argmax token (the end token), projected, as keras-cv.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.ln_final = keras.layers.LayerNormalization(epsilon=1e-5, name="ln_final")

    def hidden_states(self, token_ids, attention_mask=None):
        """token_ids (batch, L) -> final-norm states (batch, L, width). Without a mask (SD's
        way) these are the U-Net's context."""
        length = self.context_length
        positions = ops.expand_dims(ops.arange(length, dtype="int32"), 0)
        x = self.token_embedding(token_ids) + self.positional_embedding(positions)
        causal = ops.triu(ops.ones((length, length)) * -float("inf"), k=1)
        padding = None
        if attention_mask is not None:
            keep = ops.cast(attention_mask, "float32")[:, None, None, :]
            padding = (1.0 - keep) * -1e8
        x = self.encoder(x, causal_attention_mask=causal, attention_mask=padding)
        return self.ln_final(x)

    def call(self, inputs, attention_mask=None):
        states = self.hidden_states(inputs, attention_mask)
        end = ops.cast(ops.argmax(inputs, axis=-1), "int32")[:, None, None]
        return self.text_projector(ops.take_along_axis(states, end, axis=1)[:, 0])


class TinyCLIP(CLIP):
    """A `keras_cv.models.CLIP` with the causal text tower (arguments: `TinyCLIPConfig`).

    Built as keras-cv's CLIP builds itself (same sub-models, names and outputs), without its
    keras-nlp check: that package is needed only by keras-cv's BPE tokenizer, not used here.
    """

    def __init__(self, embed_dim, image_resolution, vision_layers, vision_width,
                 vision_patch_size, context_length, vocab_size, transformer_width,
                 transformer_heads, transformer_layers, **kwargs):
        images = keras.Input((image_resolution, image_resolution, 3), name="images")
        token_ids = keras.Input((context_length,), dtype="int32", name="token_ids")
        padding_mask = keras.Input((context_length,), name="padding_mask")
        image_encoder = CLIPImageEncoder(
            input_resolution=image_resolution, patch_size=vision_patch_size, width=vision_width,
            num_layers=vision_layers, heads=vision_width // 64, output_dim=embed_dim,
            name="image_encoder",
        )
        text_encoder = CausalCLIPTextEncoder(
            transformer_width=transformer_width, transformer_layers=transformer_layers,
            transformer_heads=transformer_heads, vocab_size=vocab_size, embed_dim=embed_dim,
            context_length=context_length, name="text_encoder",
        )
        clip_head = CLIPHead(name="clip_head")
        image_logits, text_logits = clip_head(
            image_encoder(images), text_encoder(token_ids, attention_mask=padding_mask)
        )
        super(CLIP, self).__init__(
            inputs={"images": images, "token_ids": token_ids, "padding_mask": padding_mask},
            outputs={"image_logits": image_logits, "text_logits": text_logits},
            **kwargs,
        )
        self.embed_dim, self.image_resolution = embed_dim, image_resolution
        self.vision_layers, self.vision_width = vision_layers, vision_width
        self.vision_patch_size, self.context_length = vision_patch_size, context_length
        self.vocab_size, self.transformer_width = vocab_size, transformer_width
        self.transformer_heads, self.transformer_layers = transformer_heads, transformer_layers
        self.image_encoder, self.text_encoder = image_encoder, text_encoder
        self.clip_head = clip_head


def build_tiny_clip(config=TinyCLIPConfig()):
    """A TinyCLIP with random weights."""
    return TinyCLIP(**dataclasses.asdict(config))


def clip_tokenizer(config=TinyCLIPConfig()):
    """The word tokenizer on CLIP_VOCABULARY, padded to the CLIP's context length."""
    return WordTokenizer(CLIP_VOCABULARY, max_length=config.context_length)


def clip_tokens(tokenizer, captions):
    """Captions -> token_ids int32 (n, L) and padding_mask float32 (n, L), keras-cv's inputs."""
    return (np.array(tokenizer(captions), np.int32),
            np.array(tokenizer.padding_mask(captions), np.float32))


def to_clip_images(images):
    """Compositions (n, 32, 64[, 1]), uint8 or float in [-1, 1] -> (n, 64, 64, 3) float32 in
    [-1, 1]: padded with black (-1) above and below, grey tiled to 3 channels."""
    images = np.asarray(images)
    images = images[..., 0] if images.ndim == 4 else images
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 127.5 - 1.0
    pad = (IMAGE_SIZE - images.shape[1]) // 2
    square = np.pad(images.astype(np.float32), ((0, 0), (pad, pad), (0, 0)),
                    constant_values=-1.0)
    return np.repeat(square[..., None], 3, axis=-1)


def _unit(x):
    return x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))


def image_embeddings(clip, images):
    """Any keras_cv.models.CLIP: preprocessed images (n, R, R, 3) -> unit-norm (n, embed_dim).
    (keras-cv's `CLIPHead` divides by one norm of the whole batch; CLIP-Score needs one per
    row, so the embeddings are normalised here.)"""
    return _unit(clip.image_encoder(images))


def text_embeddings(clip, token_ids, padding_mask):
    """Any keras_cv.models.CLIP: token_ids, padding_mask (n, L) -> unit-norm (n, embed_dim)."""
    return _unit(clip.text_encoder(token_ids, attention_mask=padding_mask))


def text_encoder_from_clip(clip, name="tiny_text_encoder"):
    """The rebuilt text encoder with sites (`models/text_encoder.py`), holding a copy of the
    CLIP text tower's weights: tokens, positions (batch, L) -> (batch, L, width), equal to
    `clip.text_encoder.hidden_states(tokens)`."""
    tower = clip.text_encoder
    encoder = site_text_encoder.build_text_encoder(
        tower.vocab_size, tower.context_length, tower.transformer_width,
        tower.transformer_layers, tower.transformer_heads, name=name,
    )
    copy_text_tower(tower, encoder)
    return encoder


def copy_text_tower(tower, encoder):
    """Sets the rebuilt encoder's weights from a CausalCLIPTextEncoder's, layer by layer."""
    embedding = next(l for l in encoder.layers if isinstance(l, site_text_encoder.CLIPEmbedding))
    blocks = [l for l in encoder.layers if isinstance(l, site_text_encoder.CLIPEncoderLayer)]
    final_norm = next(l for l in encoder.layers if isinstance(l, site_text_encoder.FinalNorm))
    pairs = [(embedding.token_embedding, tower.token_embedding),
             (embedding.position_embedding, tower.positional_embedding),
             (final_norm, tower.ln_final)]
    for layer, block in zip(blocks, tower.encoder.resblocks, strict=True):
        attention, source = layer.clip_attn, block.attn
        pairs += [(layer.layer_norm1, block.ln_1), (layer.layer_norm2, block.ln_2),
                  (layer.fc1, block.mlp_dense_1), (layer.fc2, block.mlp_dense_2),
                  (attention.q_proj, source.q_proj), (attention.k_proj, source.k_proj),
                  (attention.v_proj, source.v_proj), (attention.out_proj, source.out_proj)]
    for target, source in pairs:
        target.set_weights(source.get_weights())


def save_tiny_clip(clip, record, clip_dir=ASSETS_DIR):
    """Writes the CLIP's weights (float16 `weights.npz`) and `record.json` (with its config)."""
    record = dict(record, config=clip_config(clip))
    bundled.save_bundle({COMPONENT: clip}, record, clip_dir)


def clip_config(clip):
    return {field.name: getattr(clip, field.name)
            for field in dataclasses.fields(TinyCLIPConfig)}


def read_clip_record(clip_dir=ASSETS_DIR):
    """The record written by `save_tiny_clip` (dict); FileNotFoundError naming what is missing."""
    path = os.path.join(clip_dir, bundled.RECORD_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{clip_dir!r} holds no tiny CLIP ({path} is missing): train one with "
            "`python scripts/train_tiny_clip.py --clip_dir=...`"
        )
    with open(path) as f:
        return json.load(f)


def weights_digest(clip_dir=ASSETS_DIR):
    """SHA-256 of the CLIP's weights file (hex): names the CLIP a U-Net run was trained under."""
    with open(os.path.join(clip_dir, bundled.WEIGHTS_FILE), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def load_tiny_clip(clip_dir=ASSETS_DIR):
    """The tiny CLIP saved in `clip_dir` (default: the one shipped in the package)."""
    record = read_clip_record(clip_dir)
    clip = build_tiny_clip(TinyCLIPConfig(**record["config"]))
    return bundled.load_component(clip, COMPONENT, clip_dir)


def pipeline_with_text_tower(clip_dir, bundle_dir, work_dir):
    """A TinyPipeline with `bundle_dir`'s U-Net and autoencoder and `clip_dir`'s text tower
    (any depth), written as a bundle in `work_dir` so the pipeline and the lens load it as any
    bundle. For text-side measurements: the U-Net was not trained under this tower."""
    from keras_sd_interp.models.tiny import TinyPipeline

    base = TinyPipeline(bundle_dir=bundle_dir)
    encoder = text_encoder_from_clip(load_tiny_clip(clip_dir))
    record = dict(base.record, text_layers=encoder.num_text_layers)
    models = {"unet": base.diffusion_model, "text_encoder": encoder,
              "vae_encoder": base.vae_encoder, "decoder": base.decoder}
    bundled.save_bundle(models, record, work_dir)
    return TinyPipeline(bundle_dir=work_dir)
