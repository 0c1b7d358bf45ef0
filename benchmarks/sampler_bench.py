"""The toolkit's sampler against keras-cv's `text_to_image`, and the cost of a DAAM-style trace.

Same prompt, seed, steps and guidance; the variants run interleaved (so load drifts hit all
alike) and the median of the repeats is reported:
  keras-cv  `StableDiffusionBase.text_to_image` (two `predict_on_batch` calls per step);
  ours      `pipe.text_to_image` (one compiled step per denoising step, a 2B batch);
  traced    ours inside `lens.trace(pipe, record="*.attn2.probs", reduce="sum")`.

    python benchmarks/sampler_bench.py                                   # tiny, batch 1 and 16
    python benchmarks/sampler_bench.py --models=sd14 --weights_dir=DIR   # DIR holds the BPE file
"""

import contextlib
import io
import json
import time

import numpy as np
from absl import app, flags
from keras_cv.src.models.stable_diffusion.stable_diffusion import StableDiffusionBase

from keras_sd_interp import lens
from keras_sd_interp.io import save_json
from keras_sd_interp.models import load_pipeline

flags.DEFINE_list("models", ["tiny"], "tiny and/or sd14 (random weights at 256x256).")
flags.DEFINE_list("batch_sizes", None, "Images per generation (default: tiny 1,16; sd14 1).")
flags.DEFINE_integer("num_steps", None, "Denoising steps (default: tiny 25, sd14 5).")
flags.DEFINE_integer("repeats", None, "Timed generations per variant (default: tiny 5, sd14 3).")
flags.DEFINE_string("weights_dir", None, "sd14: directory with bpe_simple_vocab_16e6.txt.gz.")
flags.DEFINE_string("out", "figures/lens/sampler_bench.json", "Where the results go.")
FLAGS = flags.FLAGS

PROMPTS = {"tiny": "a sneaker and a bag", "sd14": "a photograph of an astronaut riding a horse"}


def variants(pipe, prompt, batch_size, num_steps):
    """name -> function running one generation (returns a trace or None)."""
    kwargs = dict(batch_size=batch_size, num_steps=num_steps, seed=0,
                  unconditional_guidance_scale=5.0)

    def keras_cv():
        with contextlib.redirect_stdout(io.StringIO()):  # keras-cv's progress bar
            StableDiffusionBase.text_to_image(pipe, prompt, **kwargs)

    def ours():
        pipe.text_to_image(prompt, **kwargs)

    def traced():
        with lens.trace(pipe, record="*.attn2.probs", reduce="sum", half="cond") as tr:
            pipe.text_to_image(prompt, **kwargs)
        return tr

    return {"keras_cv": keras_cv, "ours": ours, "traced": traced}


def measure(pipe, prompt, batch_size, num_steps, repeats):
    """Median seconds per generation of each variant, and the trace's memory in bytes."""
    runs = variants(pipe, prompt, batch_size, num_steps)
    for run in runs.values():  # compile and warm up
        run()
    times = {name: [] for name in runs}
    memory = 0
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            result = run()
            times[name].append(time.perf_counter() - start)
            memory = result.memory_bytes() if result is not None else memory
    medians = {name: float(np.median(values)) for name, values in times.items()}
    return medians, memory


def main(argv):
    del argv
    results = []
    for model in FLAGS.models:
        if model == "tiny":
            pipe = load_pipeline("tiny")
        else:
            pipe = load_pipeline("sd14", 256, 256, weights_dir=FLAGS.weights_dir,
                                 random_weights=True)
        batch_sizes = [int(b) for b in FLAGS.batch_sizes or (["1", "16"] if model == "tiny"
                                                               else ["1"])]
        num_steps = FLAGS.num_steps or (25 if model == "tiny" else 5)
        repeats = FLAGS.repeats or (5 if model == "tiny" else 3)
        for batch_size in batch_sizes:
            medians, memory = measure(pipe, PROMPTS[model], batch_size, num_steps, repeats)
            row = dict(model=model, image=f"{pipe.img_height}x{pipe.img_width}",
                       batch_size=batch_size, num_steps=num_steps, repeats=repeats,
                       seconds=medians, speedup_vs_keras_cv=medians["keras_cv"] / medians["ours"],
                       trace_ratio=medians["traced"] / medians["ours"], trace_bytes=memory)
            results.append(row)
            print(json.dumps(row), flush=True)
    save_json(FLAGS.out, results)
    print("| model | image | batch | steps | keras-cv (s) | ours (s) | speed-up | traced (s) "
          "| trace / ours | trace memory |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s = r["seconds"]
        print(f"| {r['model']} | {r['image']} | {r['batch_size']} | {r['num_steps']} | "
              f"{s['keras_cv']:.3f} | {s['ours']:.3f} | {r['speedup_vs_keras_cv']:.2f}x | "
              f"{s['traced']:.3f} | {r['trace_ratio']:.3f} | {r['trace_bytes'] / 1e6:.2f} MB |")


if __name__ == "__main__":
    app.run(main)
