"""Seconds per closed-form edit on SD v1.4, key collection included (random weights: the time
does not depend on the values).

    python benchmarks/edit_timing_sd14.py --weights_dir=DIR_WITH_BPE --img_size=256

DiffQuickFix ("Van Gogh" -> "a painting", the SD v1.4 templates, text layer 0) and LocoEdit
(the same pair, cross-attention layers 6, 7), each built --repeats times after one warm-up
call (which compiles); the median is reported, and for LocoEdit the share spent on the text
encoder's contexts. LocoEdit is timed interleaved against the path before the shared solve
(`editing.methods.locoedit_unshared`: one text-encoder call per pair and keep set, one solve
per kernel), with and without a keep set, so that a load change hits both alike.
`--model_size=mini` times SD v1.4's mini widths instead. Writes --output (JSON).
"""

import time

from absl import app
from absl import flags

flags.DEFINE_string("weights_dir", None, "Folder with CLIP's BPE vocabulary (and, without "
                    "--random_weights, keras-cv's SD v1.4 .h5 files).")
flags.DEFINE_bool("random_weights", True, "Random weights (timing only).")
flags.DEFINE_integer("img_size", 256, "Image size of the pipeline (pixels).")
flags.DEFINE_integer("repeats", 3, "Timed builds per method.")
flags.DEFINE_enum("model_size", "full", ["full", "mini"], "SD v1.4's widths, or the mini ones.")
flags.DEFINE_string("output", "figures/editing/edit_timing_sd14.json", "Where to write.")
FLAGS = flags.FLAGS

from keras_sd_interp.cli import check_existing_dir, check_int, check_out_file  # noqa: E402

check_existing_dir("weights_dir", "weights folder")
check_int("img_size", minimum=64)
check_int("repeats", minimum=1)
check_out_file("output")


def median_seconds(build, repeats):
    """Median wall seconds of `build()` over `repeats` calls, after one warm-up call."""
    import numpy as np

    build()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        build()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def interleaved_seconds(builds, repeats):
    """{name: median wall seconds} of each `builds[name]()`, the calls interleaved round by
    round after one warm-up call of each."""
    import numpy as np

    for build in builds.values():
        build()
    times = {name: [] for name in builds}
    for _ in range(repeats):
        for name, build in builds.items():
            start = time.perf_counter()
            build()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def main(argv):
    del argv
    import os

    from keras_sd_interp import editing, io
    from keras_sd_interp.editing import methods
    from keras_sd_interp.models import load_pipeline

    pipe = load_pipeline("sd14", FLAGS.img_size, FLAGS.img_size, weights_dir=FLAGS.weights_dir,
                         random_weights=FLAGS.random_weights, size=FLAGS.model_size)
    pair = ("Van Gogh", "a painting")
    prompts = methods.edit_prompts_for(pipe, pair[0])
    loco = interleaved_seconds({
        "locoedit_seconds": lambda: editing.locoedit(pipe, [pair], layers=[6, 7]),
        "locoedit_before_seconds": lambda: methods.locoedit_unshared(pipe, [pair], [6, 7]),
        "locoedit_keep_seconds": lambda: editing.locoedit(pipe, [pair], layers=[6, 7],
                                                          keep=["Monet"]),
        "locoedit_keep_before_seconds": lambda: methods.locoedit_unshared(
            pipe, [pair], [6, 7], keep=["Monet"]),
        "contexts_seconds": lambda: methods.contexts(pipe, prompts + prompts),
    }, FLAGS.repeats)
    result = {
        "diffquickfix_seconds": median_seconds(
            lambda: editing.diffquickfix(pipe, *pair), FLAGS.repeats),
        **loco,
        "locoedit_concept_rows_seconds": median_seconds(
            lambda: editing.locoedit(pipe, [pair], layers=[6, 7], positions="concept"),
            FLAGS.repeats),
        "num_prompts": len(prompts), "img_size": FLAGS.img_size, "cpu_count": os.cpu_count(),
        "model_size": FLAGS.model_size, "load_average": list(os.getloadavg()),
    }
    for key, value in result.items():
        print(f"{key}: {value}")
    io.save_json(FLAGS.output, result)
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
