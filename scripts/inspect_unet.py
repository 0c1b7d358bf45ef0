"""Prints the U-Net's layers, its 52 3x3 convs and every tappable site with its shape, then
the text encoder's sites and the sampler's (everything `lens.trace` can record or edit).

    python scripts/inspect_unet.py --model=tiny
    python scripts/inspect_unet.py --model=sd14 --random_weights --img_height=256 --img_width=256
"""

from absl import app
from absl import flags

from keras_sd_interp import cli
from keras_sd_interp.reports import unet as unet_report

cli.define_model_flags(mini=True)
flags.DEFINE_integer("max_text_length", None, "Context length (default 77 sd14, 8 tiny).")
cli.check_int("max_text_length", 0, allow_none=True)
flags.DEFINE_bool("text_sites", True, "Also list the text encoder's and the sampler's sites.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    print(unet_report.report(cli.unet_from_flags(FLAGS, FLAGS.max_text_length)))
    if FLAGS.text_sites:
        print("\n" + unet_report.text_report(cli.text_encoder_from_flags(FLAGS)))


if __name__ == "__main__":
    app.run(main)
