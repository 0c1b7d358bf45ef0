"""Trains the Fashion-MNIST judge and ships it: float16 weights plus a JSON record.

  nice -n 10 python scripts/train_classifier.py --epochs=12 --seed=0
"""

import os
import sys
import time

from absl import app, flags

from keras_sd_interp.models.keras_weights import save_float16_weights
from keras_sd_interp.io import save_json
from keras_sd_interp.judge.judge import ASSET_DIR, load_judge
from keras_sd_interp.judge.train import train_judge

FLAGS = flags.FLAGS
flags.DEFINE_integer("epochs", 12, "Epochs over the 60,000 training images.")
flags.DEFINE_integer("batch_size", 128, "Images per step.")
flags.DEFINE_float("learning_rate", 2e-3, "Peak Adam learning rate (cosine-decayed to 0).")
flags.DEFINE_integer("seed", 0, "Seed for weights, shuffling and flips.")
flags.DEFINE_string("out_dir", ASSET_DIR, "Where judge.weights.h5 and judge_record.json go.")
flags.DEFINE_string("data_dir", None, "Folder with the Fashion-MNIST IDX files (default: search).")


def main(argv):
    del argv
    started = time.time()
    judge, record = train_judge(epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                                learning_rate=FLAGS.learning_rate, seed=FLAGS.seed,
                                data_dir=FLAGS.data_dir)
    weights_path = os.path.join(FLAGS.out_dir, "judge.weights.h5")
    save_float16_weights(judge, weights_path)
    # Score the shipped float16 file itself, not the float32 model in memory.
    from keras_sd_interp.data.fashion_mnist import load_fashion_mnist
    from keras_sd_interp.judge.judge import predict_classes

    test_images, test_labels = load_fashion_mnist("test", data_dir=FLAGS.data_dir)
    predicted, _ = predict_classes(load_judge(weights_path), test_images)
    record["shipped_float16_test_accuracy"] = float((predicted == test_labels).mean())
    record["train_seconds"] = time.time() - started
    record["command"] = " ".join(["python"] + sys.argv)
    record["data"] = "real Fashion-MNIST (train 60,000 / test 10,000) via keras_sd_interp.data"
    save_json(os.path.join(FLAGS.out_dir, "judge_record.json"), record)
    print(f"test accuracy {record['test_accuracy']:.4f} "
          f"(float16 file: {record['shipped_float16_test_accuracy']:.4f})")


if __name__ == "__main__":
    app.run(main)
