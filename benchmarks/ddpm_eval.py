"""Measures the shipped DDPM and judge; writes the numbers (JSON) and their figures.

  nice -n 10 python benchmarks/ddpm_eval.py --num_samples=1000 --batch_size=200

Generated arrays are cached in --cache (an .npz), so scoring can be rerun without sampling.
"""

import os
import time

from absl import app, flags

from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.ddpm.evaluate import (
    generate_eval_batches,
    judge_test_accuracy,
    load_eval_arrays,
    score_eval_arrays,
)
from keras_sd_interp.ddpm.pretrained import load_ddpm
from keras_sd_interp.ddpm.sampler import Sampler
from keras_sd_interp.io import save_figure, save_json
from keras_sd_interp.judge.judge import load_judge, predict_classes
from keras_sd_interp.data.pixels import to_uint8
from keras_sd_interp.reports.plotting.ddpm import agreement_figure
from keras_sd_interp.reports.plotting.grids import image_grid_figure

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_samples", 1000, "Samples for the Frechet judge distance.")
flags.DEFINE_integer("batch_size", 200, "Chains per batch; the first batch runs the jumps.")
flags.DEFINE_integer("seed", 0, "Seed of the first batch (batch k uses seed + k).")
flags.DEFINE_float("max_jump_beta", 0.5, "Largest beta of a jump.")
flags.DEFINE_string("cache_dir", "runs/ddpm_eval", "One .npz per generated batch; reruns skip them.")
flags.DEFINE_bool("generate_only", False, "Stop after generating (no judge needed).")
flags.DEFINE_bool("score_only", False, "Score the batches already generated; sample nothing.")
flags.DEFINE_string("out_dir", "figures/ddpm", "Where the JSON and the figures go.")


def main(argv):
    del argv
    started = time.time()
    if not FLAGS.score_only:
        model, train_betas, _ = load_ddpm()
        generate_eval_batches(Sampler(model, train_betas), FLAGS.cache_dir, FLAGS.num_samples,
                              FLAGS.batch_size, max_jump_beta=FLAGS.max_jump_beta, seed=FLAGS.seed)
        print(f"generated (or found) all batches in {time.time() - started:.0f} s")
    if FLAGS.generate_only:
        return
    arrays = load_eval_arrays(FLAGS.cache_dir)
    judge = load_judge()
    results, shares = score_eval_arrays(judge, arrays)
    results["judge_test_accuracy"] = judge_test_accuracy(judge)
    save_json(os.path.join(FLAGS.out_dir, "ddpm_eval.json"), results)
    experiment = results["jump_experiment"]
    save_figure(os.path.join(FLAGS.out_dir, "jump_agreement.png"),
                agreement_figure(experiment["jump_points"], shares, experiment["num_chains"]))
    grid = arrays["samples"][:40]
    titles = [CLASS_NAMES[c] for c in predict_classes(judge, grid)[0]]
    save_figure(os.path.join(FLAGS.out_dir, "samples.png"),
                image_grid_figure(to_uint8(grid), titles, columns=10, cell_inches=(1.0, 1.15),
                                  title_size=7, full_range=True))
    print(results)


if __name__ == "__main__":
    app.run(main)
