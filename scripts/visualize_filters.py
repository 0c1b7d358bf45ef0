"""Filter visualization by latent descent: one image per (layer or conv, filter).

    python scripts/visualize_filters.py --random_weights --layers=12 --filters=0,1,2
    python scripts/visualize_filters.py --random_weights --convs=7,8 --filters=0-15
    python scripts/visualize_filters.py --model=sd14 --weights_dir=/data --mode=paper \
        --layers=6,12,21,48 --filters=218        # the paper's Appendix A at 512x512

Writes `layer_{L}_filter_{F}.png` (a whole layer, as the course did) or
`layer_{L}_conv1_filter_{F}.png` (a ResBlock conv), the final latent and the loss curve.
"""

from absl import app, flags, logging

from keras_sd_interp import cli
from keras_sd_interp.cli import define_model_flags, parse_numbers
from keras_sd_interp.lens.taps import NUM_CONVS, NUM_LAYERS
from keras_sd_interp.featureviz import conv_target, layer_target, tap_target
from keras_sd_interp.cli.descent import define_descent_flags, settings_from_flags
from keras_sd_interp.experiments.filters import visualize_into
from keras_sd_interp.models.paper import unet_and_decoder
from keras_sd_interp.reports.featureviz import FilterFiles

define_model_flags()
define_descent_flags()
flags.DEFINE_list("layers", [], "Layer indices (whole layer outputs, the paper's figures).")
flags.DEFINE_list("convs", [], "Conv indices 0..51 (a ResBlock conv itself in corrected mode).")
flags.DEFINE_list("taps", [], "Any tap names (see scripts/inspect_unet.py).")
flags.DEFINE_list("filters", ["0"], "Filters, e.g. 0,5,7 or a range 0-15.")
cli.check_index_list("layers", NUM_LAYERS - 1)
cli.check_index_list("convs", NUM_CONVS - 1)
cli.check_index_list("filters")
flags.register_multi_flags_validator(
    ["layers", "convs", "taps"], lambda values: any(values.values()),
    "give --layers, --convs or --taps (see scripts/inspect_unet.py for names)")
FLAGS = flags.FLAGS


def check_conv_filters(convs, filters):
    """--filters against each --convs conv's filter count, from the preset (before any model;
    --layers and --taps are checked against the built U-Net, before any descent)."""
    from keras_sd_interp.lens.taps import conv_filter_count

    for conv in convs:
        count = conv_filter_count(FLAGS.model, conv)
        if filters and max(filters) >= count:
            raise app.UsageError(f"--filters: {max(filters)} is out of range for conv {conv}: "
                                 f"it has filters 0..{count - 1} (--model={FLAGS.model})")


def main(_):
    settings = settings_from_flags(FLAGS)
    filters = parse_numbers(FLAGS.filters)  # checked by the flag validators
    layers, convs = parse_numbers(FLAGS.layers), parse_numbers(FLAGS.convs)
    check_conv_filters(convs, filters)
    unet, decoder = unet_and_decoder(FLAGS.model, FLAGS.img_height, FLAGS.img_width,
                                     FLAGS.weights_dir, FLAGS.random_weights)
    targets = [layer_target(unet, layer, f) for layer in layers
               for f in filters]
    targets += [conv_target(unet, conv, f, FLAGS.mode) for conv in convs
                for f in filters]
    targets += [tap_target(unet, name, f) for name in FLAGS.taps for f in filters]
    out_dir = FLAGS.out_dir or f"outputs/filters_{FLAGS.model}_{FLAGS.mode}"
    written = visualize_into(unet, decoder, targets, settings,
                             FilterFiles(out_dir, FLAGS.overwrite), FLAGS.batch_size)
    logging.info("wrote %d filters to %s (%d already there)", len(written), out_dir,
                 len(targets) - len(written))


if __name__ == "__main__":
    app.run(main)
