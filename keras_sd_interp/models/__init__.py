"""The U-Net and the pipelines: configs, the rebuilt U-Net, weight loading.

    unet = load_unet("tiny")                       # bundled small model (random until trained)
    unet = load_unet("sd14", weights_dir="/data")  # SD v1.4 from keras-cv's .h5 files
"""

from keras_sd_interp.models.config import (PRESETS, SD14, SD14_MINI, SIZES, TINY, UNetConfig,
                                           check_size, get_config, sized_config)
from keras_sd_interp.models.unet import SDUNet

# Default image size and context length of each preset.
DEFAULT_SIZES = {"sd14": (512, 512, 77), "tiny": (32, 64, 8)}


def load_unet(
    model="tiny", img_height=None, img_width=None, max_text_length=None, weights_dir=None,
    random_weights=False, size="full",
):
    """Builds the rebuilt U-Net of a preset and loads its weights.

    Args:
        model: "sd14" or "tiny".
        img_height, img_width: image size in pixels (default: the preset's, 512x512 / 32x64).
        max_text_length: context length (default 77 for sd14, 8 for tiny; 0 is the paper's).
        weights_dir: sd14 only: directory with keras-cv's `.h5` files (None: download them).
            The tiny model loads from its bundle: a weights_dir given with it is an error.
        random_weights: skip loading (tests, benchmarks, topology-only work).
        size: "full", or "mini" (sd14 only, with random_weights: `config.SD14_MINI`).

    Returns:
        SDUNet with inputs [latent, timestep_embedding, context] and output the noise estimate.
    """
    check_size(model, size, random_weights)
    config = sized_config(model, size)
    _check_weights_dir(config, weights_dir)
    if config.name == "sd14" and weights_dir is not None and not random_weights:
        from keras_sd_interp.models.weights import checked_sd14_file

        checked_sd14_file("diffusion_model", weights_dir)  # a bad file fails before the build
    height, width, length = DEFAULT_SIZES[config.name]
    unet = SDUNet(
        height if img_height is None else img_height,
        width if img_width is None else img_width,
        length if max_text_length is None else max_text_length,
        config=config,
    )
    if not random_weights:
        _load_weights(unet, config, weights_dir)
    return unet


def _check_weights_dir(config, weights_dir):
    if weights_dir is not None and config.name != "sd14":
        raise ValueError(
            f"weights_dir={weights_dir!r} is for model 'sd14' (keras-cv's .h5 files); the "
            f"{config.name!r} model loads its weights from its bundle: leave weights_dir None"
        )


def _load_weights(unet, config, weights_dir):
    if config.name == "sd14":
        from keras_sd_interp.models.weights import load_sd14_weights

        load_sd14_weights(unet, "diffusion_model", weights_dir)
    elif config.name == "tiny":
        from keras_sd_interp.models.bundled import load_tiny_unet_weights

        load_tiny_unet_weights(unet)
    else:
        raise ValueError(f"no weights known for config {config.name!r}: pass random_weights=True")


def load_pipeline(
    model="tiny", img_height=None, img_width=None, weights_dir=None, random_weights=False,
    jit_compile=False, size="full", bundle_dir=None,
):
    """A text-to-image pipeline (keras-cv's StableDiffusion API) with the rebuilt U-Net.

    Attributes of the result: `diffusion_model` (SDUNet, context length 77 for sd14),
    `decoder` (latent (b, H/f, W/f, 4) -> image in [-1, 1], (b, H, W, C): C = 3 for sd14,
    1 for tiny), `text_encoder`, `tokenizer`, `config`, `img_height`, `img_width`, and
    `text_to_image(prompt, batch_size, num_steps, unconditional_guidance_scale, seed)`.
    `bundle_dir` (tiny only): another bundle written by scripts/train_tiny.py instead of the
    shipped one, e.g. a candidate being evaluated.
    size="mini" (sd14 with random_weights only; `weights_dir` then only gives CLIP's BPE file):
    SD v1.4's layers and site names at small widths, for fast tests.
    """
    check_size(model, size, random_weights)
    config = get_config(model)
    _check_weights_dir(config, weights_dir)
    if bundle_dir is not None and config.name != "tiny":
        raise ValueError(f"bundle_dir={bundle_dir!r} is for model 'tiny'; {config.name!r} "
                         "loads its weights from weights_dir")
    height, width, _ = DEFAULT_SIZES[config.name]
    height = height if img_height is None else img_height
    width = width if img_width is None else img_width
    if config.name == "sd14":
        from keras_sd_interp.models.pipeline import SD14Pipeline

        return SD14Pipeline(
            height, width, weights_dir=weights_dir,
            jit_compile=jit_compile, random_weights=random_weights, size=size,
        )
    from keras_sd_interp.models.tiny import TinyPipeline

    from keras_sd_interp.models import bundled

    return TinyPipeline(height, width, random_weights=random_weights,
                        bundle_dir=bundled.ASSETS_DIR if bundle_dir is None else bundle_dir)
