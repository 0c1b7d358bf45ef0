"""The jump visualization for one chain per seed: a GIF and a PNG strip, plus the beta plot.

  python scripts/ddpm_jumps.py --seed=0 --jumps=250,200,150,100,50 --out_dir=figures/ddpm
"""

from absl import app, flags

from keras_sd_interp import cli
from keras_sd_interp.ddpm.jumps import check_jump_points
from keras_sd_interp.ddpm.pretrained import ASSET_DIR, ddpm_timesteps, load_ddpm_sampler
from keras_sd_interp.ddpm.prior import STARTS
from keras_sd_interp.judge.judge import load_judge
from keras_sd_interp.reports.ddpm import write_jump_betas, write_jump_chain

FLAGS = flags.FLAGS
flags.DEFINE_multi_integer("seed", [0], "Seeds; one chain, one GIF and one strip per seed.")
flags.DEFINE_list("jumps", ["250", "200", "150", "100", "50"], "Training steps to jump from.")
flags.DEFINE_float("max_jump_beta", 0.5, "Largest beta of a jump; sets how many jump steps.")
flags.DEFINE_string("out_dir", "figures/ddpm", "Where the figures go.")
flags.DEFINE_string("ddpm_dir", None, "Folder with a DDPM export (ddpm_unet.weights.h5 and "
                    "ddpm_record.json, e.g. train_ddpm.py's --export_dir); default: the shipped one.")
flags.DEFINE_integer("frame_every", 5, "Chain steps per GIF frame.")
flags.DEFINE_enum("start", "matched", STARTS, "The chain's first image: a Gaussian matching the "
                  "forward process's last step (matched), or N(0, I) as in the annotated-diffusion "
                  "example and the course milestone (standard). See docs/ddpm.md.")
flags.DEFINE_bool("clip_x0", False, "Clip each predicted clean image to [-1, 1] as Ho et al.'s "
                  "sampler does (measured: no better here; docs/ddpm.md).")
cli.check_int_list("jumps", 0)
cli.check_float("max_jump_beta", 0, 1, exclusive_minimum=True)
cli.check_out_dir("out_dir")
cli.check_int("frame_every", 1)


def main(argv):
    del argv
    try:
        jump_points = check_jump_points(FLAGS.jumps, ddpm_timesteps(FLAGS.ddpm_dir or ASSET_DIR))
    except ValueError as error:
        raise app.UsageError(f"--jumps={','.join(FLAGS.jumps)}: {error}") from error
    sampler, _ = load_ddpm_sampler(FLAGS.ddpm_dir or ASSET_DIR, FLAGS.start, FLAGS.clip_x0)
    judge = load_judge()
    write_jump_betas(sampler.train_betas, jump_points, FLAGS.max_jump_beta, FLAGS.out_dir)
    for seed in FLAGS.seed:
        final_name = write_jump_chain(sampler, judge, seed, jump_points, FLAGS.max_jump_beta,
                                      FLAGS.out_dir, FLAGS.frame_every)
        print(f"seed {seed}: final '{final_name}'; wrote jumps_seed{seed}.gif and .png")


if __name__ == "__main__":
    app.run(main)
