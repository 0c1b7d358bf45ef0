"""Latent descent speed: the course's way against ours, and ours against the cost floor.

    python benchmarks/featureviz_bench.py                  # tiny and sd14 (random) at 256x256

For each model, in one run, filters x steps per second of
  (a) the course method: a Keras sub-model per filter (`Model(unet.inputs, layers[L].output)`),
      eager GradientTape, one filter at a time;
  (b) ours: 16 filters in one compiled step (`optimize_latents`), tracing excluded;
the ratio of our step to the floor, one compiled forward+backward of the same truncated
network for the same batch; and what batching can gain on this machine at all: the floor of
one item times the batch, over the floor of the batch (about 1 where the convolutions are
compute-bound, as on a 2-core CPU; far above 1 on a GPU).
"""

import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from keras_sd_interp import featureviz as fv
from keras_sd_interp.lens import taps
from keras_sd_interp.models import load_unet
from keras_sd_interp.models.layers import timestep_embedding

flags.DEFINE_list("models", ["tiny", "sd14"], "Models to measure.")
flags.DEFINE_integer("layer", 12, "Layer whose filters are optimized.")
flags.DEFINE_integer("sd14_size", 256, "sd14 image side in pixels.")
flags.DEFINE_integer("batch", 16, "Filters per batch for ours.")
flags.DEFINE_integer("steps", 6, "Timed steps per measurement.")
flags.DEFINE_integer("course_filters", 2, "Filters timed for the course method.")
FLAGS = flags.FLAGS


def course_rate(unet, layer, filters, steps):
    """Filter-steps per second of the course's loop (sub-model built per filter, eager)."""
    dim = unet.inputs[1].shape[-1]
    context = tf.zeros((1,) + tuple(unet.inputs[2].shape[1:]))
    start = time.perf_counter()
    for f in range(filters):
        model = keras.Model(inputs=unet.inputs, outputs=unet.layers[layer].output)
        image = tf.constant(np.random.random((1,) + tuple(unet.inputs[0].shape[1:])) * 20 + 128)
        for i in range(steps):
            t_emb = timestep_embedding(tf.constant([float(i)]), dim)
            with tf.GradientTape() as tape:
                tape.watch(image)
                loss = tf.reduce_mean(model([image, t_emb, context])[:, :, :, f])
            grads = tape.gradient(loss, image)
            image = image - 5 * grads / (tf.sqrt(tf.reduce_mean(grads**2)) + 1e-5)
    return filters * steps / (time.perf_counter() - start)


def ours_rate(unet, layer, batch, steps):
    targets = [fv.layer_target(unet, layer, f) for f in range(batch)]
    fv.optimize_latents(unet, targets, fv.DescentSettings.paper(steps=1), progress=False)
    start = time.perf_counter()
    fv.optimize_latents(unet, targets, fv.DescentSettings.paper(steps=steps), progress=False)
    return batch * steps / (time.perf_counter() - start)


def floor_seconds(unet, layer, batch, calls):
    """Seconds of one compiled forward+backward of the network truncated at `layer`."""
    tap = taps.tap_model(unet, [f"layer_{layer}"])
    inputs = [tf.random.normal((batch,) + tuple(x.shape[1:])) for x in unet.inputs]

    @tf.function
    def forward_backward(latent, t_emb, context):
        with tf.GradientTape() as tape:
            tape.watch(latent)
            total = tf.reduce_sum(tap([latent, t_emb, context])[f"layer_{layer}"])
        return tape.gradient(total, latent)

    forward_backward(*inputs).numpy()
    start = time.perf_counter()
    for _ in range(calls):
        forward_backward(*inputs).numpy()
    return (time.perf_counter() - start) / calls


def measure(model):
    size = (32, 64) if model == "tiny" else (FLAGS.sd14_size, FLAGS.sd14_size)
    keras.utils.set_random_seed(0)
    unet = load_unet(model, *size, 0, random_weights=True)
    course = course_rate(unet, FLAGS.layer, FLAGS.course_filters, FLAGS.steps)
    ours = ours_rate(unet, FLAGS.layer, FLAGS.batch, FLAGS.steps)
    floor = floor_seconds(unet, FLAGS.layer, FLAGS.batch, FLAGS.steps)
    single_floor = floor_seconds(unet, FLAGS.layer, 1, FLAGS.steps)
    our_step = FLAGS.batch / ours
    return [f"{model} {size[0]}x{size[1]}", course, ours, ours / course, our_step, floor,
            our_step / floor, FLAGS.batch * single_floor / floor]


def main(_):
    rows = [measure(model) for model in FLAGS.models]
    print(f"\nlayer {FLAGS.layer}, batch {FLAGS.batch}, {FLAGS.steps} timed steps\n")
    print("| model | (a) course, filter-steps/s | (b) ours, filter-steps/s | (b)/(a) "
          "| our step, s | floor fwd+bwd, s | step/floor | batching gain |")
    print("|---|---|---|---|---|---|---|---|")
    for name, course, ours, ratio, step, floor, over, gain in rows:
        print(f"| {name} | {course:.2f} | {ours:.2f} | {ratio:.1f}x | {step:.3f} | {floor:.3f} "
              f"| {over:.2f} | {gain:.2f}x |")


if __name__ == "__main__":
    app.run(main)
