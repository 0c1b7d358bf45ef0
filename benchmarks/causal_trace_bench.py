"""Cost per restored component: K restorations in one batched generation vs one generation each.

    python benchmarks/causal_trace_bench.py --num_components=8 --num_steps=5

Both variants restore the same K U-Net components into the same corrupted run of tiny. Each is
timed twice, interleaved: the first pass includes tracing the compiled steps (one per distinct
set of edits: one for the batch, K for one-at-a-time), the second is warm.
"""

import json
import time

from absl import app
from absl import flags

flags.DEFINE_integer("num_components", 8, "K, the components restored.")
flags.DEFINE_integer("num_steps", 5, "DDIM steps.")
flags.DEFINE_string("output", None, "Optional JSON path.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.num_components < 1 or FLAGS.num_steps < 1:
        raise app.UsageError("--num_components and --num_steps must be >= 1")
    from keras_sd_interp.attribution import causal_trace as ct
    from keras_sd_interp.lens.components import unet_components
    from keras_sd_interp.models import load_pipeline

    pipe = load_pipeline("tiny")
    prompt = "a sneaker and a bag"
    components = unet_components(pipe)[::max(1, 70 // FLAGS.num_components)]
    components = components[:FLAGS.num_components]
    noise = pipe.sampler.initial_noise(1, 0).numpy()
    clean, _ = ct.clean_run(pipe, prompt, noise, components, FLAGS.num_steps, 5.0)
    corruption = ct.Corruption()
    corruption.set((1, pipe.max_length, 64), [2], 0.25, seed=0)

    def batched():
        ct.restored_images(pipe, prompt, noise, clean, corruption, [[c] for c in components],
                           FLAGS.num_steps, 5.0)

    def one_each():
        for c in components:
            ct.restored_images(pipe, prompt, noise, clean, corruption, [[c]], FLAGS.num_steps, 5.0)

    seconds = {"batched": [], "one_each": []}
    for _ in range(2):
        for name, fn in (("batched", batched), ("one_each", one_each)):
            start = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - start)
    k = len(components)
    result = {"components": k, "num_steps": FLAGS.num_steps,
              "seconds_per_component": {name: {"cold": s[0] / k, "warm": s[1] / k}
                                        for name, s in seconds.items()}}
    result["speedup"] = {when: result["seconds_per_component"]["one_each"][when]
                         / result["seconds_per_component"]["batched"][when]
                         for when in ("cold", "warm")}
    print(json.dumps(result, indent=2))
    if FLAGS.output:
        from keras_sd_interp import io
        io.save_json(FLAGS.output, result)


if __name__ == "__main__":
    app.run(main)
