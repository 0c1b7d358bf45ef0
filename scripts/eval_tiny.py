"""Scores the bundled tiny model with the Fashion-MNIST judge and writes the numbers and a grid.

    python scripts/eval_tiny.py            # 200 pair, 200 single and 200 unconditional images

Writes figures/tiny/prompt_accuracy.json and figures/tiny/pairs_grid.png (the first 40 pairs).
"""

from absl import app
from absl import flags

from keras_sd_interp import cli
from keras_sd_interp.data import load_fashion_mnist
from keras_sd_interp.judge import load_judge
from keras_sd_interp.models import bundled
from keras_sd_interp.models.tiny import TinyPipeline
from keras_sd_interp.reports.generation import write_prompt_accuracy
from keras_sd_interp.training.tiny_eval import evaluate

flags.DEFINE_integer("num_per_class", 20, "Images per class on each side (x10 in all).")
flags.DEFINE_integer("num_steps", 25, "DDIM steps.")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_integer("seed", 0, "Seed of the prompt pairing and the noise.")
flags.DEFINE_string("bundle_dir", bundled.ASSETS_DIR, "The bundle to score (default: the "
                    "shipped one).")
flags.DEFINE_string("data_dir", None, "Folder with the Fashion-MNIST IDX files (for the real "
                    "reference; default: the usual places).")
flags.DEFINE_string("output_dir", "figures/tiny", "Where to write the JSON and the grid.")
FLAGS = flags.FLAGS
cli.check_int("num_per_class", 1)
cli.check_int("num_steps", 1)
cli.check_float("guidance")
cli.check_int("seed", 0)
flags.register_validator("bundle_dir", bundled.bundle_dir_checker())
cli.check_existing_dir("data_dir", "Fashion-MNIST folder")
cli.check_out_dir("output_dir")


def main(argv):
    del argv
    pipe, judge = TinyPipeline(bundle_dir=FLAGS.bundle_dir), load_judge()
    test_images, test_labels = load_fashion_mnist("test", FLAGS.data_dir)
    scores, pair_images = evaluate(pipe, judge, test_images, test_labels, FLAGS.num_per_class,
                                   FLAGS.num_steps, FLAGS.guidance, FLAGS.seed)
    write_prompt_accuracy(scores, pair_images, FLAGS.output_dir)
    for key in ("pairs", "pairs_left", "pairs_right", "singles", "unconditional"):
        print(f"{key:14s} {scores[key]:.3f}")
    for key, value in scores["reference"].items():
        print(f"reference, {key:11s} {value:.3f}")


if __name__ == "__main__":
    app.run(main)
