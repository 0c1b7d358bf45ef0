"""What the HeatMaps result object saves: building a word grid (every word of a prompt: its
global map, per-layer and per-head maps) from one aggregation per image, against aggregating
from scratch for each view (1 + 2W aggregations, as the report did before the result object).

    python benchmarks/daam_word_grid.py      # tiny, 8 two-item prompts, 25 steps, ~1 min

One traced generation; then both ways over every image, interleaved (median of --repeats),
on the same trace. Checks that both give the same maps. Writes figures/daam/word_grid.json.
"""

import os
import time

import numpy as np
from absl import app
from absl import flags

flags.DEFINE_integer("num_prompts", 8, "Two-item prompts in the traced generation.")
flags.DEFINE_integer("num_steps", 25, "DDIM steps.")
flags.DEFINE_integer("repeats", 5, "Timed repeats of each way (interleaved).")
flags.DEFINE_string("out", "figures/daam/word_grid.json", "Where to write the results.")
FLAGS = flags.FLAGS


def from_scratch(tc, image):
    """The word grid with one aggregation per view: {word: (global, per layer, per head)}."""
    maps = tc.heat_maps(image=image)
    return {word: (heat_map, tc.per_layer(word, image)[0], tc.per_head(word, image)[0])
            for word, heat_map in maps.items()}


def from_result(tc, image):
    """The same grid from one `HeatMaps` (one aggregation)."""
    result = tc.compute_heat_maps(image)
    return {word: (heat_map, result.per_layer(word)[0], result.per_head(word)[0])
            for word, heat_map in result.global_maps().items()}


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
    with daam.trace(pipe) as tc:
        pipe.sampler.generate(prompts, num_steps=FLAGS.num_steps,
                              unconditional_guidance_scale=5.0, seed=0)
    ways = {"from_scratch": from_scratch, "result_object": from_result}
    grids = {name: [way(tc, i) for i in range(len(prompts))] for name, way in ways.items()}
    same = all(np.array_equal(a, b)
               for old, new in zip(grids["from_scratch"], grids["result_object"])
               for word in old for a, b in zip(old[word], new[word]))
    times = {name: [] for name in ways}
    for _ in range(FLAGS.repeats):
        for name, way in ways.items():
            start = time.perf_counter()
            for i in range(len(prompts)):
                way(tc, i)
            times[name].append(time.perf_counter() - start)
    median = {k: float(np.median(v)) for k, v in times.items()}
    words = [len(set(tc.words(i))) for i in range(len(prompts))]
    results = {
        "median_seconds": median,
        "ratio_from_scratch_over_result_object": median["from_scratch"] / median["result_object"],
        "aggregations": {"from_scratch": sum(1 + 2 * w for w in words),
                         "result_object": len(prompts)},
        "same_maps": same,
        "all_seconds": times,
        "num_prompts": len(prompts), "distinct_words_per_prompt": words,
        "num_steps": FLAGS.num_steps, "repeats": FLAGS.repeats, "cpu_count": os.cpu_count(),
        "command": "python benchmarks/daam_word_grid.py",
    }
    io.save_json(FLAGS.out, results)
    print(f"word grids of {len(prompts)} images: from scratch {median['from_scratch']:.3f} s, "
          f"result object {median['result_object']:.3f} s, ratio "
          f"{results['ratio_from_scratch_over_result_object']:.2f}; same maps {same}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
