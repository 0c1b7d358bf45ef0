"""Trains the tiny CLIP (keras-cv's CLIP classes at small width) contrastively on captioned
Fashion-MNIST compositions, evaluates caption retrieval on held-out compositions of the test
split, and writes weights and record to --clip_dir.

    python scripts/train_tiny_clip.py --run_dir=runs/tiny_clip        # -> runs/tiny_clip/export
    python scripts/train_tiny_clip.py --clip_dir=keras_sd_interp/assets/tiny_clip   # to ship

Rerunning the same command resumes from the last checkpoint in --run_dir; a rerun with other
settings (any flag but --max_minutes, --clip_dir, --data_dir, --eval_size) refuses, naming it.
"""

import os
import sys

from absl import app
from absl import flags

from keras_sd_interp import cli
from keras_sd_interp.data import load_fashion_mnist
from keras_sd_interp.data.compositions import CAPTION_STYLES
from keras_sd_interp.models.config import TINY
from keras_sd_interp.models.tiny_clip import TinyCLIPConfig
from keras_sd_interp.training.tiny_clip import TinyCLIPTrainer, train_tiny_clip

DEFAULTS = TinyCLIPConfig()
flags.DEFINE_string("run_dir", "runs/tiny_clip", "Checkpoint folder (resumed from if present).")
flags.DEFINE_string("clip_dir", os.path.join("runs", "tiny_clip", "export"), "Where to write "
                    "weights.npz and record.json (to ship: "
                    "--clip_dir=keras_sd_interp/assets/tiny_clip).")
flags.DEFINE_string("data_dir", None, "Folder with the Fashion-MNIST IDX files (default: "
                    "the Debian package's, Keras' cache, then tensorflow-datasets).")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_integer("batch_size", 128, "Compositions per step.")
flags.DEFINE_integer("steps", 4000, "Training steps in all (cosine decay ends there).")
flags.DEFINE_float("learning_rate", 1e-3, "AdamW peak learning rate.")
flags.DEFINE_integer("warmup_steps", 200, "Linear warmup steps.")
flags.DEFINE_enum("captions", "spatial", sorted(CAPTION_STYLES), "Caption style (see "
                  "keras_sd_interp/data/compositions.py).")
flags.DEFINE_integer("embed_dim", DEFAULTS.embed_dim, "Joint embedding width.")
flags.DEFINE_integer("vision_layers", DEFAULTS.vision_layers, "Vision transformer layers.")
flags.DEFINE_integer("vision_width", DEFAULTS.vision_width, "Vision width (a multiple of 64: "
                     "keras-cv gives it width / 64 heads).")
flags.DEFINE_integer("vision_patch_size", DEFAULTS.vision_patch_size, "Patch side (divides 64).")
flags.DEFINE_integer("text_layers", DEFAULTS.transformer_layers, "Text transformer layers "
                     "(width: the tiny U-Net's context width, 64).")
flags.DEFINE_integer("text_heads", DEFAULTS.transformer_heads, "Text attention heads "
                     "(divides 64).")
flags.DEFINE_integer("eval_size", 2000, "Held-out compositions for the retrieval accuracy.")
flags.DEFINE_float("max_minutes", None, "Stop after this many minutes (this run); rerun to "
                   "continue.")
cli.check_out_dir("run_dir")
cli.check_out_dir("clip_dir")
cli.check_existing_dir("data_dir", "Fashion-MNIST folder")
cli.check_int("seed", 0)
cli.check_int("batch_size", 2)
cli.check_int("steps", 1)
cli.check_float("learning_rate", 0, exclusive_minimum=True)
cli.check_int("warmup_steps", 0)
cli.check_int("embed_dim", 1)
cli.check_int("vision_layers", 1)
cli.check_int("text_layers", 1)
cli.check_int("eval_size", 1)
cli.check_float("max_minutes", 0, exclusive_minimum=True, allow_none=True)
flags.register_validator("vision_width", lambda v: v >= 64 and v % 64 == 0,
                         "--vision_width must be a positive multiple of 64 (keras-cv's CLIP "
                         "gives the vision tower width / 64 heads)")
flags.register_validator("vision_patch_size", lambda v: 0 < v <= 64 and 64 % v == 0,
                         "--vision_patch_size must divide the 64x64 input, e.g. 4, 8 or 16")
flags.register_validator("text_heads", lambda v: 0 < v <= TINY.context_dim
                         and TINY.context_dim % v == 0,
                         f"--text_heads must divide the text width {TINY.context_dim}, e.g. 4")
flags.register_multi_flags_validator(
    ["warmup_steps", "steps"], lambda v: v["warmup_steps"] < v["steps"],
    "--warmup_steps must be below --steps (the warmup would never reach the peak learning "
    "rate, and the cosine decay would never start)")
FLAGS = flags.FLAGS
RUN_FLAGS = ("seed", "batch_size", "steps", "learning_rate", "warmup_steps", "captions",
             "embed_dim", "vision_layers", "vision_width", "vision_patch_size", "text_layers",
             "text_heads")


def main(argv):
    del argv
    config = TinyCLIPConfig(
        embed_dim=FLAGS.embed_dim, vision_layers=FLAGS.vision_layers,
        vision_width=FLAGS.vision_width, vision_patch_size=FLAGS.vision_patch_size,
        transformer_layers=FLAGS.text_layers, transformer_heads=FLAGS.text_heads,
    )
    images, labels = load_fashion_mnist("train", FLAGS.data_dir)
    trainer = TinyCLIPTrainer(
        FLAGS.run_dir, images, labels, config, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
        steps=FLAGS.steps, learning_rate=FLAGS.learning_rate, warmup_steps=FLAGS.warmup_steps,
        captions=FLAGS.captions, settings={name: FLAGS[name].value for name in RUN_FLAGS},
    )
    test_images, test_labels = load_fashion_mnist("test", FLAGS.data_dir)
    record = train_tiny_clip(trainer, FLAGS.clip_dir, test_images, test_labels,
                             FLAGS.eval_size, FLAGS.max_minutes,
                             command="python " + " ".join(sys.argv))
    print(f"steps {record['steps']}, loss {record['loss_last_50_this_run']:.3f}, retrieval "
          f"top-1 {record['retrieval_top1']}; wrote {FLAGS.clip_dir}")


if __name__ == "__main__":
    app.run(main)
