"""LocoEdit's closed-form solve at SD v1.4's sizes, the shared solve against one solve per
kernel, interleaved (random numbers: the time does not depend on the values).

    python benchmarks/edit_solve_bench.py --num_keys=584 --num_kernels=4

Keys (n, 768) and their targets' rows (n, 768), as `editing.locoedit_rows` returns them for
"Van Gogh" -> "a painting" on the 8 SD v1.4 templates with positions="all" (584 keys), and
--num_kernels kernels (768, 1280) (layers 6-7: W_K and W_V at SD v1.4's 1280-wide level).
Before: `ridge_update(K, keys, wanted @ K)` per kernel (an n x n solve each); now:
`linear_map_update(keys, wanted)` once, then M @ K per kernel. Checks both give the same
kernels; writes --output (JSON).
"""

import time

from absl import app
from absl import flags

flags.DEFINE_integer("num_keys", 584, "Key rows (LocoEdit, positions='all': 584).")
flags.DEFINE_integer("num_keep", 0, "Keep rows (UCE's preservation rows).")
flags.DEFINE_integer("num_kernels", 4, "Kernels edited (2 layers x W_K, W_V).")
flags.DEFINE_integer("out_width", 1280, "Kernel output width (layers 6-7: 1280).")
flags.DEFINE_integer("repeats", 5, "Timed rounds (interleaved).")
flags.DEFINE_string("output", "figures/editing/edit_solve_bench.json", "Where to write.")
FLAGS = flags.FLAGS

from keras_sd_interp.cli import check_int, check_out_file  # noqa: E402

for _name in ("num_keys", "num_kernels", "out_width", "repeats"):
    check_int(_name, minimum=1)
check_int("num_keep", minimum=0)
check_out_file("output")


def main(argv):
    del argv
    import json
    import os

    import numpy as np

    from keras_sd_interp import io
    from keras_sd_interp.editing.closed_form import linear_map_update, ridge_update

    rng = np.random.default_rng(0)
    keys, wanted = (rng.normal(size=(FLAGS.num_keys, 768)).astype("float32") for _ in range(2))
    keep = rng.normal(size=(FLAGS.num_keep, 768)).astype("float32") if FLAGS.num_keep else None
    kernels = [0.02 * rng.normal(size=(768, FLAGS.out_width)).astype("float32")
               for _ in range(FLAGS.num_kernels)]

    def before():
        return [ridge_update(k, keys, wanted @ k, 0.01, keep) for k in kernels]

    def now():
        update = linear_map_update(keys, wanted, 0.01, keep)
        return [(update @ k.astype(np.float64)).astype(k.dtype) for k in kernels]

    times = {"before": [], "now": []}
    for _ in range(FLAGS.repeats):
        for name, run in (("before", before), ("now", now)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    worst = max(float(np.abs(a - b).max() / np.abs(a - k).max())
                for a, b, k in zip(before(), now(), kernels))
    result = {"before_seconds": float(np.median(times["before"])),
              "now_seconds": float(np.median(times["now"])),
              "max_difference_over_change": worst, "num_keys": FLAGS.num_keys,
              "num_keep": FLAGS.num_keep, "num_kernels": FLAGS.num_kernels,
              "out_width": FLAGS.out_width, "cpu_count": os.cpu_count(),
              "load_average": list(os.getloadavg())}
    io.save_json(FLAGS.output, result)
    print(json.dumps(result, indent=1), f"\nwrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
