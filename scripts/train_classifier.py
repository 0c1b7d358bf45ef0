"""Trains the Fashion-MNIST judge: float16 weights plus a JSON record in --out_dir.

  nice -n 10 python scripts/train_classifier.py --epochs=12 --seed=0   # -> runs/judge
  ... --out_dir=keras_sd_interp/assets/judge                            # ships it
"""

import sys
import time

from absl import app, flags

from keras_sd_interp import cli
from keras_sd_interp.training.judge import ship_judge, train_judge

FLAGS = flags.FLAGS
flags.DEFINE_integer("epochs", 12, "Epochs over the 60,000 training images.")
flags.DEFINE_integer("batch_size", 128, "Images per step.")
flags.DEFINE_float("learning_rate", 2e-3, "Peak Adam learning rate (cosine-decayed to 0).")
flags.DEFINE_integer("seed", 0, "Seed for weights, shuffling and flips.")
flags.DEFINE_string("out_dir", "runs/judge", "Where judge.weights.h5 and judge_record.json go "
                    "(keras_sd_interp/assets/judge ships them).")
flags.DEFINE_string("data_dir", None, "Folder with the Fashion-MNIST IDX files (default: search).")
cli.check_int("epochs", 1)
cli.check_int("batch_size", 1)
cli.check_float("learning_rate", 0, exclusive_minimum=True)
cli.check_int("seed", 0)
cli.check_out_dir("out_dir")
cli.check_existing_dir("data_dir", "Fashion-MNIST folder")


def main(argv):
    del argv
    started = time.time()
    judge, record = train_judge(epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                                learning_rate=FLAGS.learning_rate, seed=FLAGS.seed,
                                data_dir=FLAGS.data_dir)
    record = ship_judge(judge, record, FLAGS.out_dir, FLAGS.data_dir, started,
                        command=" ".join(["python"] + sys.argv))
    print(f"test accuracy {record['test_accuracy']:.4f} "
          f"(float16 file: {record['shipped_float16_test_accuracy']:.4f})")


if __name__ == "__main__":
    app.run(main)
