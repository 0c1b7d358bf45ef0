"""Cost of tapping: one compiled forward that also returns 10 internal tensors, against the
plain compiled forward, for the tiny and the SD v1.4-sized U-Net (random weights).

    python benchmarks/taps_bench.py                      # tiny at 32x64, sd14 at 256x256
    python benchmarks/taps_bench.py --models=tiny --repeats=50
"""

import time

import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from keras_sd_interp.lens import taps
from keras_sd_interp.models import load_unet

flags.DEFINE_list("models", ["tiny", "sd14"], "Which U-Nets to measure.")
flags.DEFINE_integer("repeats", None, "Timed forwards per variant (default 30 tiny, 6 sd14).")
flags.DEFINE_integer("batch_size", 1, "Batch size.")
FLAGS = flags.FLAGS

SIZES = {"tiny": (32, 64), "sd14": (256, 256)}
TAPPED = ["res_block_0.conv1", "res_block_3.conv1", "conv_9", "spatial_transformer_3.attn2.probs",
          "layer_22", "res_block_12.conv2", "spatial_transformer_9.attn1.probs",
          "res_block_16.conv1", "layer_48", "res_block_21.conv2"]


def measure(model_name, repeats, batch_size):
    """Returns (seconds per plain forward, seconds per forward with 10 taps)."""
    unet = load_unet(model_name, *SIZES[model_name], 77, random_weights=True)
    rng = np.random.default_rng(0)
    inputs = [tf.constant(rng.normal(size=(batch_size,) + tuple(x.shape[1:])), tf.float32)
              for x in unet.inputs]
    plain = tf.function(lambda x: unet(x))
    tapped = tf.function(lambda x: taps.run_with_cache(unet, x, TAPPED))
    for fn in (plain, tapped):  # trace and warm up
        fn(inputs)
        fn(inputs)
    times = {plain: [], tapped: []}
    for _ in range(repeats):  # interleaved, so drifts in machine load hit both alike
        for fn in (plain, tapped):
            start = time.perf_counter()
            tf.nest.map_structure(lambda t: t.numpy(), fn(inputs))
            times[fn].append(time.perf_counter() - start)
    return float(np.median(times[plain])), float(np.median(times[tapped]))


def main(argv):
    del argv
    rows = ["| model | image | batch | plain forward (s) | forward + 10 taps (s) | ratio |",
            "|---|---|---|---|---|---|"]
    for model_name in FLAGS.models:
        repeats = FLAGS.repeats or (30 if model_name == "tiny" else 6)
        plain, tapped = measure(model_name, repeats, FLAGS.batch_size)
        height, width = SIZES[model_name]
        rows.append(f"| {model_name} | {height}x{width} | {FLAGS.batch_size} | {plain:.4f} | "
                    f"{tapped:.4f} | {tapped / plain:.3f} |")
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    app.run(main)
