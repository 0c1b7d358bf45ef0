"""Flags shared by the scripts, and the models they name. Scripts stay thin: parse, call, write."""

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
