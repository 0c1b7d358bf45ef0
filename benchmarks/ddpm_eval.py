"""Measures the shipped DDPM and judge; writes the numbers (JSON) and their figures.

  nice -n 10 python benchmarks/ddpm_eval.py --num_samples=1000 --batch_size=200

Generated arrays are cached in --cache (an .npz), so scoring can be rerun without sampling.
"""

import time

from absl import app, flags

from keras_sd_interp.ddpm.pretrained import ASSET_DIR, load_ddpm_sampler
from keras_sd_interp.ddpm.prior import STARTS
from keras_sd_interp.judge.judge import load_judge
from keras_sd_interp.reports.ddpm import (
    generate_eval_batches,
    load_eval_arrays,
    write_eval_report,
)

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_samples", 1000, "Samples for the Frechet judge distance.")
flags.DEFINE_integer("batch_size", 200, "Chains per batch; the first batch runs the jumps.")
flags.DEFINE_integer("seed", 0, "Seed of the first batch (batch k uses seed + k).")
flags.DEFINE_float("max_jump_beta", 0.5, "Largest beta of a jump.")
flags.DEFINE_string("cache_dir", "runs/ddpm_eval", "One .npz per generated batch; reruns skip them.")
flags.DEFINE_bool("generate_only", False, "Stop after generating (no judge needed).")
flags.DEFINE_bool("score_only", False, "Score the batches already generated; sample nothing.")
flags.DEFINE_string("out_dir", "figures/ddpm", "Where the JSON and the figures go.")
flags.DEFINE_string("ddpm_dir", None, "Folder with a DDPM export (ddpm_unet.weights.h5 and "
                    "ddpm_record.json, e.g. train_ddpm.py's --export_dir); default: the shipped one.")

flags.DEFINE_enum("start", "matched", STARTS, "The chains' first image: matched to the forward "
                  "process's last step, or N(0, I) (standard, the example's). See docs/ddpm.md.")
flags.DEFINE_bool("clip_x0", False, "Clip each predicted clean image to [-1, 1] as Ho et al.'s "
                  "sampler does (measured: no better here; docs/ddpm.md).")


def main(argv):
    del argv
    started = time.time()
    if not FLAGS.score_only:
        sampler, _ = load_ddpm_sampler(FLAGS.ddpm_dir or ASSET_DIR, FLAGS.start, FLAGS.clip_x0)
        generate_eval_batches(sampler, FLAGS.cache_dir, FLAGS.num_samples,
                              FLAGS.batch_size, max_jump_beta=FLAGS.max_jump_beta, seed=FLAGS.seed)
        print(f"generated (or found) all batches in {time.time() - started:.0f} s")
    if FLAGS.generate_only:
        return
    arrays = load_eval_arrays(FLAGS.cache_dir)
    results = write_eval_report(load_judge(), arrays, FLAGS.out_dir)
    print(results)


if __name__ == "__main__":
    app.run(main)
