"""Branch-specialization SVD between two convs, the two annotated scatter plots.

    python scripts/branch_svd.py --random_weights --conv_a=9 --conv_b=38 --concat --mode=paper
    python scripts/branch_svd.py --random_weights --conv_a=9 --conv_b=38   # corrected
"""

from absl import app, flags, logging

from keras_sd_interp import cli
from keras_sd_interp.cli import define_model_flags, parse_numbers
from keras_sd_interp.lens.taps import NUM_CONVS, conv_filter_count
from keras_sd_interp.models.paper import paper_unet
from keras_sd_interp.circuits.branch_svd import branch_svd, check_mark_range, check_marks
from keras_sd_interp.reports.circuits import branch_svd_stem, save_branch_svd

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
cli.check_int("conv_a", 0, NUM_CONVS - 1)
cli.check_int("conv_b", 0, NUM_CONVS - 1)
cli.check_index_list("mark_a")
cli.check_index_list("mark_b")
cli.check_out_dir("out_dir")
FLAGS = flags.FLAGS


def main(_):
    marks = parse_numbers(FLAGS.mark_a), parse_numbers(FLAGS.mark_b)
    try:  # before the model load (sd14: ~30 s): the filter count is known from the preset
        check_mark_range(conv_filter_count(FLAGS.model, FLAGS.conv_a), FLAGS.conv_a, *marks)
    except ValueError as error:
        raise app.UsageError(f"--mark_a/--mark_b: {error}") from error
    unet = paper_unet(FLAGS.model, FLAGS.img_height, FLAGS.img_width, FLAGS.weights_dir,
                      FLAGS.random_weights)
    out_dir = FLAGS.out_dir or f"outputs/branch_svd_{FLAGS.model}"
    check_marks(unet, FLAGS.conv_a, *marks)  # the built model agrees (tested)
    result = branch_svd(unet, FLAGS.conv_a, FLAGS.conv_b, FLAGS.mode, FLAGS.concat, FLAGS.variant)
    path = save_branch_svd(result, branch_svd_stem(out_dir, FLAGS.mode, FLAGS.conv_a, FLAGS.conv_b),
                           FLAGS.conv_a, FLAGS.conv_b, *marks,
                           title=f"{FLAGS.mode} mode, conv {FLAGS.conv_b} input channels "
                                 f"{result.channels}")
    logging.info("singular values %s; wrote %s", result.singular_values, path)


if __name__ == "__main__":
    app.run(main)
