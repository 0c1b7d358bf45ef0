"""Draws images for a prompt and saves them as one grid PNG.

    python scripts/generate.py --prompt="a sneaker and a bag" --num_images=8 --seed=0
"""

from absl import app
from absl import flags

from keras_sd_interp import cli
from keras_sd_interp.models import load_pipeline
from keras_sd_interp.reports.generation import write_prompt_grid
from keras_sd_interp.reports.paths import prompt_figure_path

flags.DEFINE_string("prompt", "a sneaker and a bag", "What to draw (tiny: words like 'a X and "
                    "a Y' with X, Y among t-shirt trouser pullover dress coat sandal shirt "
                    "sneaker bag boot).")
flags.DEFINE_enum("model", "tiny", ["tiny", "sd14"], "Which pipeline.")
flags.DEFINE_string("weights_dir", None, "sd14: directory with keras-cv's .h5 files.")
flags.DEFINE_bool("random_weights", False, "Use random weights (shapes only).")
flags.DEFINE_integer("num_images", 8, "How many images.")
flags.DEFINE_integer("num_steps", 25, "DDIM steps.")
flags.DEFINE_float("guidance", 5.0, "Classifier-free guidance scale.")
flags.DEFINE_integer("seed", 0, "Noise seed.")
flags.DEFINE_integer("scale", 4, "Upscale factor of the saved grid (nearest neighbour).")
flags.DEFINE_string("output", None, "PNG path (default figures/generate/<prompt>_seed<N>.png).")
FLAGS = flags.FLAGS
cli.check_weights_dir()
cli.check_int("num_images", 1)
cli.check_int("num_steps", 1)
cli.check_float("guidance")
cli.check_int("scale", 1)
cli.check_out_file("output")


def main(argv):
    del argv
    pipe = load_pipeline(FLAGS.model, weights_dir=FLAGS.weights_dir,
                         random_weights=FLAGS.random_weights)
    images = pipe.text_to_image(FLAGS.prompt, batch_size=FLAGS.num_images,
                                num_steps=FLAGS.num_steps,
                                unconditional_guidance_scale=FLAGS.guidance, seed=FLAGS.seed)
    output = write_prompt_grid(images, FLAGS.output or prompt_figure_path(FLAGS.prompt, FLAGS.seed),
                               FLAGS.scale)
    print(f"wrote {output}")


if __name__ == "__main__":
    app.run(main)
