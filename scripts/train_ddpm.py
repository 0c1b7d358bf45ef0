"""Trains the Fashion-MNIST DDPM; rerunning with the same --checkpoint_dir resumes.

  nice -n 10 python scripts/train_ddpm.py --checkpoint_dir=runs/ddpm --epochs=5 --max_minutes=58
"""

import os
import sys

from absl import app, flags

from keras_sd_interp import cli
from keras_sd_interp.training.ddpm import export_checkpoint, train_ddpm

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint_dir", "runs/ddpm", "Where per-epoch checkpoints go (and resume from).")
flags.DEFINE_integer("epochs", 5, "Epochs over the 60,000 training images.")
flags.DEFINE_integer("batch_size", 128, "Images per step.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate (a resumed run trains at this "
                   "rate: rerun with a lower one to fine-tune).")
flags.DEFINE_integer("timesteps", 300, "Diffusion steps T.")
flags.DEFINE_enum("schedule", "linear", ["linear", "cosine", "quadratic", "sigmoid"], "Beta schedule.")
flags.DEFINE_integer("dim", 16, "Base channels of the U-Net.")
flags.DEFINE_integer("seed", 0, "Seed for weights, shuffling, timesteps and noise.")
flags.DEFINE_float("ema_decay", 0.999, "Per-step decay of the weights' moving average (what "
                   "is exported); 0 exports the last weights.")
flags.DEFINE_integer("steps_per_epoch", None, "Cap on steps per epoch (default: the whole set).")
flags.DEFINE_float("max_minutes", None, "Stop before an epoch that would end past this many minutes.")
flags.DEFINE_string("export_dir", None, "Where the float16 weights and record are written "
                    "after training (default: {--checkpoint_dir}/export; keras_sd_interp/assets/"
                    "ddpm ships them; empty: do not export).")
flags.DEFINE_string("data_dir", None, "Folder with the Fashion-MNIST IDX files (default: search).")
cli.check_out_dir("checkpoint_dir")
cli.check_int("epochs", 1)
cli.check_int("batch_size", 1)
cli.check_float("learning_rate", 0, exclusive_minimum=True)
cli.check_int("timesteps", 2)
flags.register_validator("dim", lambda dim: dim > 0 and dim % 4 == 0,
                         "must be a positive multiple of 4 (the U-Net's GroupNorm has 4 groups)")
cli.check_int("seed", 0)
cli.check_int("steps_per_epoch", 1, allow_none=True)
cli.check_float("max_minutes", 0, exclusive_minimum=True, allow_none=True)
cli.check_out_dir("export_dir")
cli.check_existing_dir("data_dir", "Fashion-MNIST folder")


def main(argv):
    del argv
    train_ddpm(FLAGS.checkpoint_dir, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
               learning_rate=FLAGS.learning_rate, timesteps=FLAGS.timesteps,
               schedule=FLAGS.schedule, dim=FLAGS.dim, seed=FLAGS.seed,
               max_minutes=FLAGS.max_minutes,
               max_steps_per_epoch=FLAGS.steps_per_epoch, data_dir=FLAGS.data_dir,
               ema_decay=FLAGS.ema_decay)
    export_dir = os.path.join(FLAGS.checkpoint_dir, "export") if FLAGS.export_dir is None \
        else FLAGS.export_dir
    if export_dir:
        extra_record = {
            "last_command": " ".join(["python"] + sys.argv),
            "data": "real Fashion-MNIST training set (60,000 images) via keras_sd_interp.data",
        }
        record = export_checkpoint(FLAGS.checkpoint_dir, export_dir, extra_record,
                                   data_dir=FLAGS.data_dir)
        print(f"exported epoch {record['epochs_done']} to {export_dir}")


if __name__ == "__main__":
    app.run(main)
