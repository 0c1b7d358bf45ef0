"""Flags shared by the scripts, and the models they name. Scripts stay thin: parse, call, write."""

import os
import re

from absl import flags


def define_model_flags(default_height=None, default_width=None):
    """Defines --model, --weights_dir, --random_weights, --img_height, --img_width."""
    flags.DEFINE_enum("model", "tiny", ["tiny", "sd14"], "Which U-Net: the bundled small model "
                      "or Stable Diffusion v1.4.")
    flags.DEFINE_string("weights_dir", None, "sd14: directory holding keras-cv's SD v1.4 .h5 "
                        "files (kcv_diffusion_model.h5, ...). Default: download them.")
    flags.DEFINE_bool("random_weights", False, "Use randomly initialised weights (topology "
                      "only; for trying tools without weights).")
    flags.DEFINE_integer("img_height", default_height, "Image height in pixels (default: the "
                         "model's, 512 for sd14, 32 for tiny).")
    flags.DEFINE_integer("img_width", default_width, "Image width in pixels (default: the "
                         "model's, 512 for sd14, 64 for tiny).")


def unet_from_flags(flag_values, max_text_length=None):
    """The U-Net named by the model flags (see `define_model_flags`)."""
    from keras_sd_interp.models import load_unet

    return load_unet(
        flag_values.model,
        flag_values.img_height,
        flag_values.img_width,
        max_text_length,
        weights_dir=flag_values.weights_dir,
        random_weights=flag_values.random_weights,
    )


def text_encoder_from_flags(flag_values):
    """The text encoder of --model (tiny: the bundle's unless --random_weights; sd14: built
    with random weights, which is enough for names and shapes)."""
    if flag_values.model == "sd14":
        from keras_sd_interp.models.text_encoder import build_sd14_text_encoder

        return build_sd14_text_encoder()
    from keras_sd_interp.models import load_pipeline

    return load_pipeline("tiny", random_weights=flag_values.random_weights).text_encoder


def parse_numbers(values):
    """Index lists from a list flag: ["0", "3-5"] -> [0, 3, 4, 5] (ranges inclusive).

    Raises ValueError naming the bad entry for anything that is not N or N-M with N <= M.
    """
    numbers = []
    for value in values:
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", value)
        if match is None or (match.group(2) and int(match.group(2)) < int(match.group(1))):
            raise ValueError(f"bad index {value!r}: give N or a range N-M with N <= M")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        numbers += list(range(first, last + 1))
    return numbers


def prompt_figure_path(prompt, seed, folder=os.path.join("figures", "generate")):
    """Default PNG path of a generated grid: "a sneaker and a bag", 0 ->
    figures/generate/a_sneaker_and_a_bag_seed0.png ("unconditional" for an empty prompt)."""
    slug = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_") or "unconditional"
    return os.path.join(folder, f"{slug}_seed{seed}.png")
