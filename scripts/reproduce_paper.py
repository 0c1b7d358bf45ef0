"""Regenerates the paper's figures, paper mode beside the corrected method: circuits -> filter
images (paper, corrected descent, corrected ascent) -> weight plots -> branch SVD, into a page to
open (`index.html`, and `index.md` for GitHub).

    python scripts/reproduce_paper.py                                # tiny model -> outputs/paper/
    python scripts/reproduce_paper.py --out_dir=figures/paper --overwrite   # the committed copy
    python scripts/reproduce_paper.py --model=sd14 --weights_dir=/data/sd14   # the paper's

A run records its settings in `settings.json`; resuming into the same --out_dir with other
settings refuses, naming the flag (use --overwrite to redo, or another --out_dir).
"""

import os
import time

from absl import app, flags, logging

from keras_sd_interp.cli import define_model_flags
from keras_sd_interp.cli.descent import (CORRECTED_DEFAULTS, define_descent_flags,
                                              settings_from_flags)
from keras_sd_interp.featureviz import DescentSettings
from keras_sd_interp.reports.paper import SettingsChanged, check_resume, run_record

define_model_flags()
define_descent_flags(default_mode="paper")
flags.DEFINE_integer("top_k", 5, "Circuits to walk (the paper: 5).")
flags.DEFINE_integer("corrected_steps", CORRECTED_DEFAULTS["steps"],
                     "Steps of the corrected columns (descent and ascent).")
flags.DEFINE_float("corrected_learning_rate", CORRECTED_DEFAULTS["learning_rate"],
                   "eta of the corrected columns.")
FLAGS = flags.FLAGS
DEFAULT_OUT_DIR = os.path.join("outputs", "paper")


def settings_and_record(out_dir):
    """(paper-column settings, corrected settings, record); checked before any model is built."""
    try:
        settings = settings_from_flags(FLAGS)
        corrected = DescentSettings.corrected(
            steps=FLAGS.corrected_steps, learning_rate=FLAGS.corrected_learning_rate,
            timestep=FLAGS.timestep, seed=FLAGS.seed)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    if FLAGS.top_k <= 0:
        raise app.UsageError(f"--top_k={FLAGS.top_k} must be >= 1 (the paper: 5)")
    record = run_record(settings, corrected, FLAGS.top_k, model=FLAGS.model,
                        img_height=FLAGS.img_height, img_width=FLAGS.img_width,
                        random_weights=FLAGS.random_weights)
    try:
        check_resume(out_dir, record, FLAGS.overwrite)
    except SettingsChanged as error:
        raise app.UsageError(str(error)) from None
    return settings, corrected, record


def main(_):
    start = time.time()
    out_dir = FLAGS.out_dir or DEFAULT_OUT_DIR
    settings, corrected, record = settings_and_record(out_dir)
    from keras_sd_interp.models.paper import unet_and_decoder
    from keras_sd_interp.experiments.paper import reproduce_paper
    from keras_sd_interp.reports.paper import PaperFiles

    unet, decoder = unet_and_decoder(FLAGS.model, FLAGS.img_height, FLAGS.img_width,
                                     FLAGS.weights_dir, FLAGS.random_weights)
    files = PaperFiles(out_dir, FLAGS.overwrite, record)
    index = reproduce_paper(unet, decoder, settings, files, FLAGS.model, FLAGS.top_k,
                            FLAGS.batch_size, corrected=corrected)
    logging.info("done in %.0f s; open %s", time.time() - start, os.path.abspath(index))
    print(f"Open {os.path.abspath(index)} (GitHub: {os.path.join(out_dir, 'index.md')})")


if __name__ == "__main__":
    app.run(main)
