"""Branch-specialization SVD between two convs, the two annotated scatter plots.

    python scripts/branch_svd.py --random_weights --conv_a=9 --conv_b=38 --concat --mode=paper
    python scripts/branch_svd.py --random_weights --conv_a=9 --conv_b=38   # corrected
"""

import os

from absl import app, flags, logging

from keras_sd_interp import io
from keras_sd_interp.circuits import branch_svd
from keras_sd_interp.cli import define_model_flags
from keras_sd_interp.featureviz.models import paper_unet
from keras_sd_interp.reports.plotting.circuits import branch_svd_figure

define_model_flags()
flags.DEFINE_integer("conv_a", 9, "Conv index (0..51) whose filters feed conv_b.")
flags.DEFINE_integer("conv_b", 38, "Conv index (0..51) reading conv_a's output.")
flags.DEFINE_bool("concat", True, "Paper mode: conv_a feeds conv_b's last (else first) channels.")
flags.DEFINE_enum("mode", "corrected", ["paper", "corrected"], "paper: the course's grouping; "
                  "corrected: grouped by filter, channels taken from the graph.")
flags.DEFINE_enum("variant", "tf", ["tf", "numpy"], "Paper mode: the course's TF function "
                  "(M = |A|.T @ |B|, the paper's figure) or its NumPy twin (M = |A.T @ B|).")
flags.DEFINE_list("mark_a", [], "conv_a filters to draw in red.")
flags.DEFINE_list("mark_b", [], "conv_b points (input channels) to draw in red.")
flags.DEFINE_string("out_dir", None, "Output directory.")
FLAGS = flags.FLAGS


def main(_):
    unet = paper_unet(FLAGS.model, FLAGS.img_height, FLAGS.img_width, FLAGS.weights_dir,
                      FLAGS.random_weights)
    result = branch_svd(unet, FLAGS.conv_a, FLAGS.conv_b, FLAGS.mode, FLAGS.concat,
                        FLAGS.variant)
    out_dir = FLAGS.out_dir or f"outputs/branch_svd_{FLAGS.model}"
    stem = os.path.join(out_dir, f"branch_svd_{FLAGS.mode}_conv_{FLAGS.conv_a}_conv_{FLAGS.conv_b}")
    io.save_npy(stem + "_left.npy", result.left)
    io.save_npy(stem + "_right.npy", result.right)
    figure = branch_svd_figure(
        result.left, result.right, FLAGS.conv_a, FLAGS.conv_b,
        [int(i) for i in FLAGS.mark_a], [int(i) for i in FLAGS.mark_b],
        title=f"{FLAGS.mode} mode, conv {FLAGS.conv_b} input channels {result.channels}",
    )
    io.save_figure(stem + ".png", figure)
    logging.info("singular values %s; wrote %s.png", result.singular_values, stem)


if __name__ == "__main__":
    app.run(main)
