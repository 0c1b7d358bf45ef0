"""Which part of the matched start matters: the DDPM's samples from N(0, I), from the data's mean
only, from its per-pixel mean and variance, and from the full matched Gaussian (docs/ddpm.md).

  python benchmarks/ddpm_start_ablation.py --num_samples=200 --seed=100

Each start is a `MatchedStart` with other moments: mean 0 and identity covariance gives N(0, I);
identity covariance keeps only the shift; a diagonal one the per-pixel spread. Same seeds, same
chain noise; only the first image differs. Writes figures/ddpm/start_ablation.json.
"""

import time

import numpy as np
from absl import app, flags

from keras_sd_interp.data.fashion_mnist import load_fashion_mnist
from keras_sd_interp.ddpm.pretrained import ASSET_DIR, load_data_moments, load_ddpm
from keras_sd_interp.ddpm.prior import ablation_starts
from keras_sd_interp.ddpm.sampler import Sampler
from keras_sd_interp.io import save_json
from keras_sd_interp.judge.judge import frechet_judge_distance, load_judge, predict_classes

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_samples", 200, "Samples per start (batches of 200).")
flags.DEFINE_integer("seed", 100, "Seed of the first batch (batch k uses seed + k).")
flags.DEFINE_string("ddpm_dir", None, "A DDPM export folder; default: the shipped one.")
flags.DEFINE_bool("clip_x0", False, "Clip predicted clean images to [-1, 1].")
flags.DEFINE_string("out", "figures/ddpm/start_ablation.json", "Where the numbers go.")


def main(argv):
    del argv
    asset_dir = FLAGS.ddpm_dir or ASSET_DIR
    model, train_betas, record = load_ddpm(asset_dir)
    alpha_bar = float(np.prod(1.0 - train_betas))
    judge = load_judge()
    test_images, _ = load_fashion_mnist("test")
    batches = int(np.ceil(FLAGS.num_samples / 200))
    results = {"num_samples": batches * 200, "seed": FLAGS.seed, "clip_x0": FLAGS.clip_x0,
               "ddpm_epochs": record["epochs_done"], "starts": {}}
    for name, start in ablation_starts(*load_data_moments(asset_dir), alpha_bar).items():
        started = time.time()
        sampler = Sampler(model, train_betas, start=start, clip_x0=FLAGS.clip_x0)
        samples = np.clip(np.concatenate([sampler.sample(200, seed=FLAGS.seed + k)["final"]
                                          for k in range(batches)]), -1.0, 1.0)
        classes = predict_classes(judge, samples)[0]
        results["starts"][name] = {
            "frechet_judge_distance_vs_test": frechet_judge_distance(judge, samples, test_images),
            "class_histogram": np.bincount(classes, minlength=10).tolist(),
            "seconds": time.time() - started,
        }
        print(name, results["starts"][name])
    save_json(FLAGS.out, results)


if __name__ == "__main__":
    app.run(main)
