"""CLIP-Score: the cosine of CLIP's image and text embeddings (Basu et al. score causal tracing
and edits with it), through keras-cv's CLIP classes, for SD v1.4 and, with the tiny CLIP, for the
bundled model.

    scorer = sd14_clip_scorer(tokenizer=pipe.tokenizer)            # clip-vit-base-patch32
    scorer = sd14_clip_scorer(pipe.tokenizer, clip_dir="/data/clip-vit-large-patch14")
    scorer = tiny_clip_scorer()                                     # the shipped tiny CLIP
    scorer(images, ["a photo of a bottle in a room"] * len(images))  # (n,) cosines in [-1, 1]

A scorer is any `score(images, texts) -> (n,)`: images uint8 (n, H, W, C), texts a list of n
strings (or one string for all). Image embeddings run batched in one compiled function; text
embeddings are computed once per distinct text and cached.
"""

import numpy as np
import tensorflow as tf
from keras import ops

from keras_sd_interp.models import clip as clip_models
from keras_sd_interp.models import tiny_clip
from keras_sd_interp.scoring.texts import as_images, as_texts

# OpenAI CLIP's image normalisation (its preprocess: resize, centre crop, normalise).
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def _unit(x):
    return x / ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))


class ClipScorer:
    """CLIP-Score with any keras-cv CLIP towers.

    Args:
        image_encoder: preprocessed images (b, R, R, 3) -> (b, D) (`clip.image_encoder`).
        text_encoder: token_ids, attention_mask (b, L) -> (b, D) (a causal text tower).
        tokenize: list of str -> (token_ids int32 (b, L), padding_mask float32 (b, L)).
        preprocess: uint8 images (b, H, W, C) -> float32 (b, R, R, 3).
        batch_size: images per compiled call.

    `scorer(images, texts)` -> float32 (n,): cos(image embedding, text embedding).
    """

    def __init__(self, image_encoder, text_encoder, tokenize, preprocess, batch_size=16):
        self.tokenize, self.preprocess, self.batch_size = tokenize, preprocess, batch_size
        self._embed_images = tf.function(lambda x: _unit(image_encoder(x)),
                                         reduce_retracing=True)
        self._embed_texts = tf.function(
            lambda ids, mask: _unit(text_encoder(ids, attention_mask=mask)),
            reduce_retracing=True)
        self._text_cache = {}

    def image_embeddings(self, images):
        """uint8 images (n, H, W, C) -> unit-norm (n, D), in batches of `batch_size`."""
        rows = [np.asarray(self._embed_images(self.preprocess(images[i:i + self.batch_size])))
                for i in range(0, len(images), self.batch_size)]
        return np.concatenate(rows)

    def text_embeddings(self, texts):
        """list of n str -> unit-norm (n, D); each distinct text is embedded once."""
        new = sorted(set(texts) - set(self._text_cache))
        if new:
            ids, mask = self.tokenize(new)
            for text, row in zip(new, np.asarray(self._embed_texts(ids, mask))):
                self._text_cache[text] = row
        return np.stack([self._text_cache[text] for text in texts])

    def __call__(self, images, texts):
        images = as_images(images)
        texts = as_texts(texts, len(images))
        if not len(images):
            return np.zeros((0,), np.float32)
        return np.sum(self.image_embeddings(images) * self.text_embeddings(texts), axis=-1)


def bpe_tokenize(tokenizer, context_length=77):
    """A `tokenize` for CLIP's BPE: keras-cv's SD `SimpleTokenizer` (start and end tokens), padded
    with 0 to `context_length` as keras-cv's CLIPProcessor pads (the tower pools at the argmax
    id, the end token 49407); ValueError for a text longer than the context."""
    def tokenize(texts):
        ids = np.zeros((len(texts), context_length), np.int32)
        mask = np.zeros((len(texts), context_length), np.float32)
        for row, text in enumerate(texts):
            tokens = tokenizer.encode(text)
            if len(tokens) > context_length:
                raise ValueError(f"text {text!r} is {len(tokens)} tokens long with start and "
                                 f"end; CLIP takes at most {context_length}")
            ids[row, :len(tokens)], mask[row, :len(tokens)] = tokens, 1.0
        return ids, mask

    return tokenize


def clip_preprocess(resolution):
    """A `preprocess` for OpenAI-trained CLIPs: uint8 (n, H, W, C) -> (n, R, R, 3) float32,
    resized (bicubic, antialiased; the shorter side, then the centre square), in CLIP's
    normalisation. Grey images are tiled to 3 channels."""
    def preprocess(images):
        images = tf.convert_to_tensor(np.asarray(images, np.float32) / 255.0)
        if images.shape[-1] == 1:
            images = tf.repeat(images, 3, axis=-1)
        height, width = images.shape[1], images.shape[2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = images[:, top:top + side, left:left + side]
        resized = tf.image.resize(square, (resolution, resolution), "bicubic", antialias=True)
        return (tf.clip_by_value(resized, 0.0, 1.0) - CLIP_MEAN) / CLIP_STD

    return preprocess


def scorer_for_clip(clip, tokenize, preprocess, batch_size=16):
    """A ClipScorer on a keras-cv CLIP's image tower and its (causal) text tower."""
    return ClipScorer(clip.image_encoder, clip_models.causal_text_tower(clip.text_encoder),
                      tokenize, preprocess, batch_size)


def sd14_clip_scorer(tokenizer, preset="clip-vit-base-patch32", clip_dir=None,
                     random_weights=False, batch_size=16):
    """CLIP-Score for SD v1.4 images (uint8 (n, H, W, 3)).

    Args:
        tokenizer: keras-cv's SD `SimpleTokenizer` (the pipeline's `pipe.tokenizer`: CLIP's BPE).
        preset: a keras-cv CLIP preset (`models.clip.PRESETS`), fetched through keras-cv's
            preset path; or clip_dir: a local preset folder (config.json, model.weights.h5).
        random_weights: a small keras-cv CLIP with random weights (`models.clip.SMALL_RANDOM`;
            tests and timings), nothing loaded.
    """
    clip_models.check_preset(preset, clip_dir)
    clip = (clip_models.build_clip() if random_weights
            else clip_models.load_clip(preset, clip_dir))
    return scorer_for_clip(clip, bpe_tokenize(tokenizer, clip.context_length),
                           clip_preprocess(clip.image_resolution), batch_size)


def tiny_clip_scorer(clip_dir=tiny_clip.ASSETS_DIR, batch_size=64):
    """CLIP-Score for the tiny model's 32x64 compositions by the tiny CLIP (shipped in
    `assets/tiny_clip/`); texts in its word vocabulary (`CLIP_VOCABULARY`)."""
    clip = tiny_clip.load_tiny_clip(clip_dir)
    tokenizer = tiny_clip.clip_tokenizer(tiny_clip.TinyCLIPConfig(**tiny_clip.clip_config(clip)))
    return scorer_for_clip(clip, lambda texts: tiny_clip.clip_tokens(tokenizer, texts),
                           tiny_clip.to_clip_images, batch_size)
