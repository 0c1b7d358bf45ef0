"""Time to generate with the bundled tiny model on this CPU: one image and a batch of 16.

    python benchmarks/tiny_generate_bench.py
"""

import time

from absl import app
from absl import flags

from keras_sd_interp.models import load_pipeline

flags.DEFINE_integer("num_steps", 25, "DDIM steps.")
flags.DEFINE_integer("repeats", 3, "Timed runs per batch size (median reported).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    pipe = load_pipeline("tiny")
    rows = ["| batch | DDIM steps | seconds (median) | images/s |", "|---|---|---|---|"]
    for batch_size in (1, 16):
        pipe.text_to_image("a sneaker and a bag", batch_size=batch_size,
                           num_steps=FLAGS.num_steps, seed=0)  # warm-up
        times = []
        for repeat in range(FLAGS.repeats):
            start = time.perf_counter()
            pipe.text_to_image("a sneaker and a bag", batch_size=batch_size,
                               num_steps=FLAGS.num_steps, seed=repeat)
            times.append(time.perf_counter() - start)
        median = sorted(times)[len(times) // 2]
        rows.append(f"| {batch_size} | {FLAGS.num_steps} | {median:.2f} | "
                    f"{batch_size / median:.1f} |")
    print("\n".join(rows))


if __name__ == "__main__":
    app.run(main)
