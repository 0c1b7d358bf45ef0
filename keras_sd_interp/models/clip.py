"""keras-cv's CLIP (`keras_cv.models.CLIP`) for CLIP-Score: presets, local preset folders, and
random weights at any size.

    clip = load_clip("clip-vit-base-patch32")                 # keras-cv's preset path (Kaggle)
    clip = load_clip("clip-vit-large-patch14", clip_dir="/data/clip-vit-large-patch14")
    clip = build_clip(SMALL_RANDOM)                           # random weights (tests)
    text_tower = causal_text_tower(clip.text_encoder)         # OpenAI's causal mask

Two things of keras-cv 0.9 are worked around here, both read from its source:
- `CLIP.__init__` refuses to run without keras-nlp, which only its `CLIPProcessor`'s BPE
  tokenizer needs; CLIP-Score tokenizes with SD's `SimpleTokenizer` (the same OpenAI BPE
  vocabulary, start 49406, end 49407), so the check is lifted while the model is built;
- its text tower adds `triu(ones)` to the attention scores (a +1 bias, not a causal mask);
  `causal_text_tower` copies the tower's weights into `CausalCLIPTextEncoder` (the tiny CLIP's
  tower: causal mask, final norm at epsilon 1e-5), which computes what OpenAI's CLIP computes.
"""

import contextlib
import json
import os
import types

import keras
from keras_cv.src.models.feature_extractor.clip import clip_model
from keras_cv.src.utils import preset_utils

from keras_sd_interp.models.tiny_clip import CausalCLIPTextEncoder, TinyCLIPConfig

PRESETS = ("clip-vit-base-patch32", "clip-vit-large-patch14", "clip-vit-base-patch16",
           "clip-vit-large-patch14-336")
CONFIG_FILE = "config.json"
# A keras-cv CLIP small enough for tests, with CLIP's real vocabulary and context length.
SMALL_RANDOM = TinyCLIPConfig(embed_dim=32, image_resolution=32, vision_layers=1,
                              vision_width=64, vision_patch_size=16, context_length=77,
                              vocab_size=49408, transformer_width=32, transformer_heads=2,
                              transformer_layers=1)
# clip-vit-base-patch32's sizes (keras-cv's preset config), for timings with random weights.
VIT_B32 = TinyCLIPConfig(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                         vision_patch_size=32, context_length=77, vocab_size=49408,
                         transformer_width=512, transformer_heads=8, transformer_layers=12)


@contextlib.contextmanager
def _keras_nlp_check_lifted():
    saved = clip_model.keras_nlp
    if saved is None:
        clip_model.keras_nlp = types.SimpleNamespace()  # any non-None module stand-in
    try:
        yield
    finally:
        clip_model.keras_nlp = saved


def build_clip(config=SMALL_RANDOM):
    """keras-cv's own `keras_cv.models.CLIP` with random weights at `config`'s sizes (a
    `TinyCLIPConfig`; its fields are the constructor's arguments)."""
    with _keras_nlp_check_lifted():
        return clip_model.CLIP(**{field: getattr(config, field)
                                  for field in TinyCLIPConfig.__dataclass_fields__})


def _fetch(source, path, preset, clip_dir):
    """A preset file through keras-cv's preset path; FileNotFoundError naming what is missing."""
    if clip_dir is not None:
        local = os.path.join(clip_dir, path)
        if not os.path.isfile(local):
            raise FileNotFoundError(
                f"{path} is missing from --clip_dir={clip_dir}: a keras-cv CLIP preset folder "
                f"holds {CONFIG_FILE} and the weights file it names (model.weights.h5), as "
                f"keras-cv's `save_to_preset` writes them or Kaggle's {preset} download has them")
        return local
    try:
        return preset_utils.get_file(source, path)
    except Exception as error:  # kagglehub missing, no network, no credentials: all offline
        raise FileNotFoundError(
            f"CLIP preset {preset!r}: {path} could not be fetched from {source} ({error}). "
            f"Offline, download the preset folder ({CONFIG_FILE}, model.weights.h5) where there "
            "is network and pass it as --clip_dir") from None


def check_preset_folder(clip_dir):
    """FileNotFoundError (as `load_clip` would give it) unless `clip_dir` holds config.json
    and the weights file it names; reads the JSON only, builds nothing."""
    with open(_fetch(clip_dir, CONFIG_FILE, "clip-vit-base-patch32", clip_dir)) as f:
        try:
            record = json.load(f)
        except ValueError as error:
            raise FileNotFoundError(f"{os.path.join(clip_dir, CONFIG_FILE)} is not JSON "
                                    f"({error}): not a keras-cv CLIP preset folder") from None
    _fetch(clip_dir, record.get("weights") or "model.weights.h5", "clip-vit-base-patch32",
           clip_dir)


def fetch_preset_config(preset):
    """The path of `preset`'s config.json, fetched through keras-cv's preset path (cached after
    the first time); FileNotFoundError as `load_clip` gives it (offline: pass --clip_dir)."""
    check_preset(preset)
    return _fetch(clip_model.CLIP.presets[preset]["kaggle_handle"], CONFIG_FILE, preset, None)


def check_preset(preset, clip_dir=None):
    """ValueError for a preset name keras-cv does not know (unless a local folder is given)."""
    if clip_dir is None and preset not in PRESETS:
        raise ValueError(f"unknown CLIP preset {preset!r}; valid: {list(PRESETS)} or a local "
                         "preset folder (--clip_dir)")


def load_clip(preset="clip-vit-base-patch32", clip_dir=None):
    """keras-cv's CLIP with the weights of `preset`, from Kaggle (keras-cv's handle, through its
    `preset_utils.get_file`) or from a local preset folder `clip_dir`.

    Raises ValueError for an unknown preset name (listing the valid ones) and FileNotFoundError
    naming the missing file (and the folder or handle it was looked for in)."""
    check_preset(preset, clip_dir)
    source = clip_dir if clip_dir is not None else \
        clip_model.CLIP.presets[preset]["kaggle_handle"]
    with open(_fetch(source, CONFIG_FILE, preset, clip_dir)) as f:
        record = json.load(f)
    sizes = {key: record["config"][key] for key in TinyCLIPConfig.__dataclass_fields__}
    clip = build_clip(TinyCLIPConfig(**sizes))
    clip.load_weights(_fetch(source, record.get("weights") or "model.weights.h5", preset,
                             clip_dir))
    return clip


def causal_text_tower(tower):
    """A `CausalCLIPTextEncoder` holding the weights of keras-cv's CLIPTextEncoder `tower`:
    call(token_ids (n, L), attention_mask (n, L)) -> (n, embed_dim), as OpenAI's CLIP."""
    if isinstance(tower, CausalCLIPTextEncoder):
        return tower
    causal = CausalCLIPTextEncoder(
        transformer_width=tower.transformer_width, transformer_layers=tower.transformer_layers,
        transformer_heads=tower.transformer_heads, vocab_size=tower.vocab_size,
        embed_dim=tower.embed_dim, context_length=tower.context_length, name="text_encoder")
    length = tower.context_length
    causal(keras.ops.ones((1, length), "int32"), attention_mask=keras.ops.ones((1, length)))
    for name in ("token_embedding", "positional_embedding", "ln_final", "text_projector"):
        getattr(causal, name).set_weights(getattr(tower, name).get_weights())
    for target, source in zip(causal.encoder.resblocks, tower.encoder.resblocks, strict=True):
        target.set_weights(source.get_weights())
    return causal
