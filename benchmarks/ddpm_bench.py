"""Sampling speed on this CPU: images per second of the compiled reverse chain for a batch of
64, and the same chain as a plain Python loop of eager steps (their ratio in one run).

  nice -n 10 python benchmarks/ddpm_bench.py --batch_size=64 --steps=300
"""

import os
import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from keras_sd_interp.ddpm.diffusion import schedule_constants
from keras_sd_interp.ddpm.pretrained import load_ddpm
from keras_sd_interp.ddpm.sampler import Sampler, reverse_step, step_noise
from keras_sd_interp.io import save_json

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 64, "Images per chain.")
flags.DEFINE_integer("steps", 300, "Reverse steps timed (the chain from step steps - 1 down to 0).")
flags.DEFINE_string("out", "figures/ddpm/ddpm_bench.json", "Where the numbers go.")


def eager_chain(model, x, betas, seed):
    """The baseline: a Python loop of eager model calls and eager step math."""
    c = schedule_constants(betas)
    for i in reversed(range(len(betas))):
        eps = model([x, tf.fill([x.shape[0]], i)], training=False)
        x, _ = reverse_step(x, eps, np.float32(betas[i]), np.float32(c["alphas_cumprod"][i]),
                            np.float32(c["alphas_cumprod_prev"][i]), step_noise(x.shape, seed, i))
    return x


def main(argv):
    del argv
    model, train_betas, _ = load_ddpm()
    betas = train_betas[: FLAGS.steps]  # The chain from step `steps` - 1 down to 0.
    sampler = Sampler(model, train_betas)
    x = tf.constant(sampler.initial_noise(FLAGS.batch_size, seed=0))
    sampler.sample_from(x, betas[:2], seed=0)  # Trace once; the timed run reuses the graph.
    eager_chain(model, x, betas[:2], seed=0)  # Warm up the eager path too.
    started = time.time()
    compiled = sampler.sample_from(x, betas, seed=0)["final"]
    compiled_seconds = time.time() - started
    started = time.time()
    eager = eager_chain(model, x, betas, seed=0).numpy()
    eager_seconds = time.time() - started
    results = {
        "batch_size": FLAGS.batch_size,
        "steps": FLAGS.steps,
        "compiled_seconds": compiled_seconds,
        "eager_seconds": eager_seconds,
        "compiled_images_per_second_full_chain": FLAGS.batch_size / compiled_seconds * FLAGS.steps / len(train_betas),
        "compiled_over_eager_speedup": eager_seconds / compiled_seconds,
        "max_abs_difference": float(np.max(np.abs(compiled - eager))),
        "cpu_count": os.cpu_count(),
    }
    save_json(FLAGS.out, results)
    print(results)


if __name__ == "__main__":
    app.run(main)
