"""What DAAM costs: generation with the DAAM recorder against plain generation, same prompts and
seeds, interleaved in one run (median of --repeats), and the memory the recorder holds.

    python benchmarks/daam_bench.py          # tiny, 8 two-item prompts, 25 steps, ~1-2 min

Both sides run the toolkit's sampler (the DAAM side inside `daam.trace`: streaming sum of
every attn2.probs, conditional half); each is compiled once before timing. Map computation
after the generation (heat_maps for every word) is timed separately. Writes
figures/daam/bench.json.
"""

import os
import time

import numpy as np
from absl import app
from absl import flags
from tqdm import tqdm

flags.DEFINE_integer("num_prompts", 8, "Two-item prompts per generation.")
flags.DEFINE_integer("num_steps", 25, "DDIM steps.")
flags.DEFINE_integer("repeats", 5, "Timed repeats of each side (interleaved).")
flags.DEFINE_string("out", "figures/daam/bench.json", "Where to write the results.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from keras_sd_interp import io
    from keras_sd_interp.attribution import daam
    from keras_sd_interp.data import compositions
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.training.tiny_eval import balanced_pairs

    pipe = load_pipeline("tiny")
    left, right = balanced_pairs(1, 0)
    prompts = [compositions.pair_caption(a, b) for a, b in zip(left, right)][:FLAGS.num_prompts]
    kwargs = dict(num_steps=FLAGS.num_steps, unconditional_guidance_scale=5.0, seed=0)

    def plain():
        return pipe.sampler.generate(prompts, **kwargs)

    def traced():
        with daam.trace(pipe) as tc:
            pipe.sampler.generate(prompts, **kwargs)
        return tc

    plain(), traced()  # compile both
    times = {"plain": [], "daam": [], "maps": []}
    for _ in tqdm(range(FLAGS.repeats), desc="repeats"):
        for name, fn in (("plain", plain), ("daam", traced)):
            start = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(len(prompts)):
            result.heat_maps(image=i)
        times["maps"].append(time.perf_counter() - start)
    same = bool(np.array_equal(plain().images, traced().generation.images))
    median = {k: float(np.median(v)) for k, v in times.items()}
    results = {
        "median_seconds": median,
        "ratio_daam_over_plain": median["daam"] / median["plain"],
        "recorder_bytes": result.memory_bytes(),
        "recorder_bytes_per_image": result.memory_bytes() // len(prompts),
        "images_bit_identical": same,
        "all_seconds": times,
        "num_prompts": len(prompts), "num_steps": FLAGS.num_steps, "repeats": FLAGS.repeats,
        "cpu_count": os.cpu_count(),
        "command": "python benchmarks/daam_bench.py",
    }
    io.save_json(FLAGS.out, results)
    print(f"plain {median['plain']:.2f} s, daam {median['daam']:.2f} s, "
          f"ratio {results['ratio_daam_over_plain']:.3f}; maps {median['maps']:.2f} s; "
          f"recorder {results['recorder_bytes'] / 1e6:.2f} MB; bit-identical {same}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
