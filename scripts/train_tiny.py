"""Trains the bundled tiny text-to-image model on real Fashion-MNIST compositions and writes
its bundle to {--run_dir}/bundle (ship it with --bundle_dir=keras_sd_interp/assets/tiny).

The shipped model (docs/tiny_clip.md): the U-Net under the frozen text tower of the shipped tiny
CLIP, on that CLIP's captions, reusing the shipped autoencoder (82 min here):

    python scripts/train_tiny.py --autoencoder_from=keras_sd_interp/assets/tiny \
        --run_dir=runs/tiny --bundle_dir=runs/tiny/bundle

The model bundled before issue 21 (now candidates/tiny_joint): text encoder and U-Net trained
jointly, after an autoencoder of its own (86 min):

    python scripts/train_tiny.py --text_encoder=joint --run_dir=runs/tiny2 \
        --bundle_dir=runs/tiny2/bundle

Rerunning with the same --run_dir resumes from its last checkpoint; a rerun whose --seed,
--batch_size, --text_encoder or --captions differ from the run's refuses, naming the flag.
"""

import os
import sys
import time

from absl import app
from absl import flags

from keras_sd_interp import cli
from keras_sd_interp.data import load_fashion_mnist
from keras_sd_interp.data.compositions import CAPTION_STYLES
from keras_sd_interp.models import bundled, tiny_clip
from keras_sd_interp.training.tiny import TEXT_ENCODERS, TinyTrainer, train_tiny

flags.DEFINE_string("run_dir", "runs/tiny", "Checkpoint folder (resumed from if present).")
flags.DEFINE_string("data_dir", None, "Folder with the Fashion-MNIST IDX files (default: "
                    "the Debian package's, Keras' cache, then tensorflow-datasets).")
flags.DEFINE_string("bundle_dir", None, "Where to write the bundle (default: {--run_dir}/bundle; "
                    "keras_sd_interp/assets/tiny ships it).")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_integer("batch_size", 64, "Compositions per step.")
flags.DEFINE_integer("autoencoder_steps", 1200, "Autoencoder steps in all.")
flags.DEFINE_integer("diffusion_steps", 6000, "Text encoder + U-Net steps in all.")
flags.DEFINE_float("learning_rate", 7e-4, "AdamW learning rate of the text encoder + U-Net.")
flags.DEFINE_float("ema_decay", 0.999, "Decay of the exported EMA weights.")
flags.DEFINE_float("max_minutes", 82.0, "Stop the diffusion phase after this many minutes "
                   "(this run); rerun to continue.")
flags.DEFINE_bool("init_from_bundle", False, "With no checkpoint in --run_dir, continue from "
                  "the weights and step counts of --bundle_dir's bundle (default: the shipped "
                  "one), with a fresh optimizer state.")
flags.DEFINE_enum("text_encoder", "clip", list(TEXT_ENCODERS), "clip (the shipped model): the "
                  "frozen text tower of the tiny CLIP in --clip_dir; joint: trained with the U-Net.")
flags.DEFINE_string("clip_dir", tiny_clip.ASSETS_DIR, "The tiny CLIP (written by "
                    "scripts/train_tiny_clip.py), for --text_encoder=clip.")
flags.DEFINE_enum("captions", None, sorted(CAPTION_STYLES), "Caption style (default: plain "
                  "for joint, the CLIP's own for clip).")
flags.DEFINE_string("autoencoder_from", None, "With no checkpoint in --run_dir, take the "
                    "autoencoder and latent scale from this bundle (e.g. "
                    "keras_sd_interp/assets/tiny) instead of training one.")
flags.DEFINE_bool("export", True, "Write the bundle at the end.")
flags.DEFINE_bool("export_only", False, "Only write the bundle from the run's last checkpoint "
                  "(safe while a training run is still writing checkpoints).")
cli.check_out_dir("run_dir")
cli.check_existing_dir("data_dir", "Fashion-MNIST folder")
cli.check_out_dir("bundle_dir")
cli.check_existing_dir("autoencoder_from", "bundle folder")
flags.register_validator("autoencoder_from", lambda v: v is None or not bundled.bundle_problem(v),
                         "--autoencoder_from must name a bundle folder holding weights.npz and "
                         "record.json (e.g. keras_sd_interp/assets/tiny)")
cli.check_int("seed", 0)
cli.check_int("batch_size", 1)
cli.check_int("autoencoder_steps", 0)
cli.check_int("diffusion_steps", 0)
cli.check_float("learning_rate", 0, exclusive_minimum=True)
cli.check_float("ema_decay", 0, 1, exclusive_maximum=True)
cli.check_float("max_minutes", 0, exclusive_minimum=True)



def _check_clip_dir(values):
    if values["text_encoder"] != "clip" and values["clip_dir"] != tiny_clip.ASSETS_DIR:
        raise flags.ValidationError(f"--clip_dir={values['clip_dir']} is for --text_encoder=clip; "
                                    f"--text_encoder={values['text_encoder']} trains its own "
                                    "text encoder and would ignore it")
    if values["text_encoder"] == "clip":
        try:
            tiny_clip.read_clip_record(values["clip_dir"])
        except FileNotFoundError as error:
            raise flags.ValidationError(f"--clip_dir={values['clip_dir']}: {error}") from None
    return True


flags.register_multi_flags_validator(["text_encoder", "clip_dir"], _check_clip_dir)
flags.register_multi_flags_validator(
    ["init_from_bundle", "autoencoder_from"],
    lambda v: not (v["init_from_bundle"] and v["autoencoder_from"]),
    "--init_from_bundle takes every weight from the bundle, so --autoencoder_from would be "
    "ignored: give one of them")
FLAGS = flags.FLAGS
RUN_FLAGS = ("seed", "batch_size", "text_encoder", "captions", "autoencoder_from")


def main(argv):
    del argv
    started = time.time()
    bundle_dir = FLAGS.bundle_dir or os.path.join(FLAGS.run_dir, "bundle")
    images, labels = load_fashion_mnist("train", FLAGS.data_dir)
    settings = {name: FLAGS[name].value for name in RUN_FLAGS}
    if FLAGS.text_encoder == "clip":  # the CLIP itself, wherever its folder is
        settings["clip_weights_sha256"] = tiny_clip.weights_digest(FLAGS.clip_dir)
    trainer = TinyTrainer(FLAGS.run_dir, images, labels, seed=FLAGS.seed,
                          batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
                          ema_decay=FLAGS.ema_decay,
                          init_bundle_dir=(FLAGS.bundle_dir or bundled.ASSETS_DIR)
                          if FLAGS.init_from_bundle else None,
                          text_encoder=FLAGS.text_encoder, clip_dir=FLAGS.clip_dir,
                          captions=FLAGS.captions, autoencoder_bundle_dir=FLAGS.autoencoder_from,
                          settings=settings)
    train_tiny(trainer, FLAGS.autoencoder_steps, FLAGS.diffusion_steps, FLAGS.max_minutes,
               FLAGS.export, FLAGS.export_only, bundle_dir,
               command="python " + " ".join(sys.argv), started=started)


if __name__ == "__main__":
    app.run(main)
