"""How much slower is optimizing pixels through the VAE encoder than optimizing the latent?

    python benchmarks/featureviz_param_bench.py                      # tiny (bundled), ~2 min
    python benchmarks/featureviz_param_bench.py --models=tiny,sd14   # + sd14 random, 256x256

For each model, the `diffusion` preset's step with each parametrization (direct latent, Fourier
latent, pixel image through `pipe.image_encoder`), one channel objective per item, run in turn
--repeats times (interleaved, so a loaded CPU slows all alike). Reported: the median seconds
per step (the first step of every run, which traces, left out) and each one's ratio to direct.
Writes --output (JSON).
"""

import time

import numpy as np
from absl import app, flags

flags.DEFINE_list("models", ["tiny"], "tiny and/or sd14 (random weights, --sd14_size).")
flags.DEFINE_integer("sd14_size", 256, "sd14 image side in pixels.")
flags.DEFINE_integer("batch", 20, "Items per batch on tiny (sd14: 1).")
flags.DEFINE_integer("steps", 6, "Steps per run (the first is tracing, not timed).")
flags.DEFINE_integer("repeats", 3, "Interleaved runs per parametrization.")
flags.DEFINE_string("site", "spatial_transformer_8", "Site of the channel objective.")
flags.DEFINE_string("output", "figures/featureviz_sae/param_speed.json", "Where to write.")
FLAGS = flags.FLAGS
PARAMS = ("direct", "fourier", "pixel")


def measure(pipe, batch):
    from keras_sd_interp.featureviz import objectives as obj
    from keras_sd_interp.featureviz.render import VizSettings, visualize

    objective = obj.batch_sum([obj.channel(FLAGS.site, i, batch=i) for i in range(batch)])
    seconds = {p: [] for p in PARAMS}
    for _ in range(FLAGS.repeats):
        for param in PARAMS:
            settings = VizSettings.preset("diffusion", param=param, steps=FLAGS.steps)
            result = visualize(pipe.diffusion_model, objective, settings, batch, progress=False,
                               encoder=pipe.image_encoder)
            seconds[param] += list(result.step_seconds[1:])
    median = {p: float(np.median(v)) for p, v in seconds.items()}
    return {"batch": batch, "seconds_per_step": median,
            "ratio_to_direct": {p: median[p] / median["direct"] for p in PARAMS}}


def main(argv):
    del argv
    from keras_sd_interp import io
    from keras_sd_interp.models import load_pipeline

    began = time.time()
    out = {}
    for model in FLAGS.models:
        if model == "tiny":
            pipe, batch = load_pipeline("tiny"), FLAGS.batch
        else:
            pipe, batch = load_pipeline("sd14", FLAGS.sd14_size, FLAGS.sd14_size,
                                        random_weights=True), 1
        out[model] = measure(pipe, batch)
        print(model, out[model])
    out["seconds"] = round(time.time() - began, 1)
    out["command"] = "python benchmarks/featureviz_param_bench.py --models=" + ",".join(
        FLAGS.models)
    io.save_json(FLAGS.output, out)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
