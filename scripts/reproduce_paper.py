"""Regenerates the paper's figures: circuits -> filter images -> weight plots -> branch SVD.

    python scripts/reproduce_paper.py --random_weights --steps=300      # tiny model, minutes
    python scripts/reproduce_paper.py --model=sd14 --weights_dir=/data/sd14   # the paper's
"""

import time

from absl import app, flags, logging

from keras_sd_interp.cli import define_model_flags
from keras_sd_interp.featureviz.flags import define_descent_flags, settings_from_flags
from keras_sd_interp.featureviz.models import unet_and_decoder
from keras_sd_interp.reports.paper import reproduce_paper

define_model_flags()
define_descent_flags(default_mode="paper")
flags.DEFINE_integer("top_k", 5, "Circuits to walk (the paper: 5).")
FLAGS = flags.FLAGS


def main(_):
    start = time.time()
    unet, decoder = unet_and_decoder(FLAGS.model, FLAGS.img_height, FLAGS.img_width,
                                     FLAGS.weights_dir, FLAGS.random_weights)
    out_dir = FLAGS.out_dir or "figures/paper"
    index = reproduce_paper(unet, decoder, settings_from_flags(FLAGS), out_dir, FLAGS.model,
                            FLAGS.top_k, FLAGS.batch_size, FLAGS.overwrite)
    logging.info("wrote %s in %.0f s", index, time.time() - start)


if __name__ == "__main__":
    app.run(main)
