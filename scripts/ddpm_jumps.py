"""The jump visualization for one chain per seed: a GIF and a PNG strip, plus the beta plot.

  python scripts/ddpm_jumps.py --seed=0 --jumps=250,200,150,100,50 --out_dir=figures/ddpm
"""

import os

from absl import app, flags

from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.ddpm.jumps import jump_schedules, run_jump_experiment
from keras_sd_interp.ddpm.pretrained import load_ddpm
from keras_sd_interp.ddpm.sampler import Sampler
from keras_sd_interp.io import save_figure, save_gif
from keras_sd_interp.judge.judge import load_judge, predict_classes
from keras_sd_interp.reports.plotting.ddpm import cumulative_betas_figure, jump_frames, jump_strip_figure

FLAGS = flags.FLAGS
flags.DEFINE_multi_integer("seed", [0], "Seeds; one chain, one GIF and one strip per seed.")
flags.DEFINE_list("jumps", ["250", "200", "150", "100", "50"], "Training steps to jump from.")
flags.DEFINE_float("max_jump_beta", 0.5, "Largest beta of a jump; sets how many jump steps.")
flags.DEFINE_string("out_dir", "figures/ddpm", "Where the figures go.")
flags.DEFINE_integer("frame_every", 5, "Chain steps per GIF frame.")


def main(argv):
    del argv
    model, train_betas, _ = load_ddpm()
    sampler = Sampler(model, train_betas)
    judge = load_judge()
    jump_points = [int(t) for t in FLAGS.jumps]
    schedules = jump_schedules(train_betas, jump_points, FLAGS.max_jump_beta)
    save_figure(os.path.join(FLAGS.out_dir, "jump_cumulative_betas.png"),
                cumulative_betas_figure(train_betas, schedules))
    for seed in FLAGS.seed:
        run = run_jump_experiment(sampler, 1, seed, jump_points, FLAGS.max_jump_beta)
        names = {kind: [CLASS_NAMES[c] for c in predict_classes(judge, run[kind][:, 0])[0]]
                 for kind in ("x_t", "x0_hat", "jump")}
        final_name = CLASS_NAMES[predict_classes(judge, run["final"])[0][0]]
        figure = jump_strip_figure(run["x_t"][:, 0], run["x0_hat"][:, 0], run["jump"][:, 0],
                                   run["final"][0], run["jump_points"], names)
        figure.suptitle(f"seed {seed}: final judged '{final_name}'", fontsize=9, y=1.02)
        save_figure(os.path.join(FLAGS.out_dir, f"jumps_seed{seed}.png"), figure)
        frames = jump_frames(run["x_all"][:, 0], run["x0_hat_all"][:, 0], run["jump_points"],
                             run["jump"][:, 0], frame_every=FLAGS.frame_every)
        save_gif(os.path.join(FLAGS.out_dir, f"jumps_seed{seed}.gif"), frames, duration_ms=80)
        print(f"seed {seed}: final '{final_name}'; wrote jumps_seed{seed}.gif and .png")


if __name__ == "__main__":
    app.run(main)
