"""Weight-norm circuits walked back from the output conv, saved as JSON; with --visualize, the
filter image of every step and the kernel plots between them (the paper's Appendix A and B).

    python scripts/find_circuits.py --random_weights --top_k=5 --mode=paper
    python scripts/find_circuits.py --random_weights --visualize --steps=100
"""

from absl import app, flags, logging

from keras_sd_interp.circuits import find_circuits
from keras_sd_interp import cli
from keras_sd_interp.cli import define_model_flags
from keras_sd_interp.cli.descent import define_descent_flags, settings_from_flags
from keras_sd_interp.models.paper import unet_and_decoder
from keras_sd_interp.experiments.circuits import circuit_figures
from keras_sd_interp.reports.circuits import CircuitFiles, write_circuits_json

define_model_flags()
define_descent_flags()
flags.DEFINE_integer("top_k", 5, "Circuits to walk (the paper: 5).")
flags.DEFINE_bool("visualize", False, "Also write filter images and kernel plots.")
flags.DEFINE_bool("follow_residual", True, "Corrected mode: walk residual routes as branches.")
cli.check_int("top_k", 1, 4 * 15)
FLAGS = flags.FLAGS


def main(_):
    settings = settings_from_flags(FLAGS)
    unet, decoder = unet_and_decoder(FLAGS.model, FLAGS.img_height, FLAGS.img_width,
                                     FLAGS.weights_dir, FLAGS.random_weights)
    found = find_circuits(unet, FLAGS.top_k, FLAGS.mode, follow_residual=FLAGS.follow_residual)
    out_dir = FLAGS.out_dir or f"outputs/circuits_{FLAGS.model}_{FLAGS.mode}"
    if FLAGS.visualize:
        circuit_figures(unet, decoder, found, settings, CircuitFiles(out_dir, FLAGS.overwrite),
                        FLAGS.batch_size)
    else:
        write_circuits_json(found, out_dir)
    for circuit in found["circuits"]:
        logging.info("circuit %d: %d steps%s", circuit["rank"], len(circuit["steps"]),
                     f" (stopped: {circuit['stopped']})" if circuit["stopped"] else "")
    logging.info("wrote %s", out_dir)


if __name__ == "__main__":
    app.run(main)
