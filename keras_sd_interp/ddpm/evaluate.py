"""The measured figures of the DDPM: sample quality by Frechet judge distance, and the jump
experiment's answer (how often intermediate images already carry the final sample's class).

Generating is the slow half and needs no judge, so it is separate from scoring.
"""

import glob
import os

import numpy as np
from tqdm import tqdm

from keras_sd_interp.data.fashion_mnist import load_fashion_mnist, to_model_range
from keras_sd_interp.ddpm.jumps import agreement_with_final, run_jump_experiment
from keras_sd_interp.io import atomic_path
from keras_sd_interp.judge.frechet import frechet_distance_from_features
from keras_sd_interp.judge.judge import penultimate_features, predict_classes

EXPERIMENT_KEYS = ("jump_points", "jump_steps", "final", "x_t", "x0_hat", "jump")


def generate_eval_batches(sampler, cache_dir, num_samples=1000, batch_size=200, jump_points=None,
                          max_jump_beta=0.5, seed=0):
    """Draws `num_samples` samples in batches (batch k uses seed + k), one `.npz` per batch in
    `cache_dir`; batches already there are skipped, so a stopped run resumes. Batch 0 also runs
    the jumps, so the jump experiment covers `batch_size` chains.
    """
    jump_points = jump_points or list(range(sampler.num_timesteps - 1, 0, -25))
    for k in tqdm(range(int(np.ceil(num_samples / batch_size))), desc="sample batches"):
        path = os.path.join(cache_dir, f"batch{k:03d}.npz")
        if os.path.exists(path):
            continue
        if k == 0:
            experiment = run_jump_experiment(sampler, batch_size, seed, jump_points, max_jump_beta)
            arrays = {key: experiment[key] for key in EXPERIMENT_KEYS}
            arrays.update(max_jump_beta=np.float64(max_jump_beta), seed=np.int64(seed))
        else:
            arrays = {"final": sampler.sample(batch_size, seed=seed + k)["final"]}
        with atomic_path(path) as tmp:
            np.savez(tmp, **arrays)


def load_eval_arrays(cache_dir):
    """Collects the cached batches: batch 0's experiment arrays plus "samples" (N, 28, 28, 1),
    every batch's final images clipped to [-1, 1]."""
    paths = sorted(glob.glob(os.path.join(cache_dir, "batch*.npz")))
    if not paths or not paths[0].endswith("batch000.npz"):
        raise FileNotFoundError(f"no generated batches in {cache_dir!r} (batch000.npz is needed)")
    with np.load(paths[0]) as first:
        arrays = dict(first)
    finals = []
    for path in paths:
        with np.load(path) as batch:
            finals.append(batch["final"])
    arrays["samples"] = np.clip(np.concatenate(finals), -1.0, 1.0)
    return arrays


def score_eval_arrays(judge, arrays, floor_seed=0):
    """Scores generated arrays with the judge. Returns (results dict, agreement shares dict).

    The Frechet judge distances: samples vs the real test set, and as the floor a random subset
    of the real training set of the same size vs the test set (and the whole training set).
    """
    classify = lambda images: predict_classes(judge, images)[0]  # noqa: E731
    samples = arrays["samples"]
    test_images, _ = load_fashion_mnist("test")
    train_images, _ = load_fashion_mnist("train")
    test_features = penultimate_features(judge, test_images)
    pick = np.random.default_rng(floor_seed).choice(len(train_images), len(samples), replace=False)
    shares = agreement_with_final(classify, arrays)
    results = {
        "num_samples": int(len(samples)),
        "frechet_judge_distance_samples_vs_test": frechet_distance_from_features(
            penultimate_features(judge, samples), test_features),
        "frechet_judge_distance_train_subset_vs_test": frechet_distance_from_features(
            penultimate_features(judge, train_images[pick]), test_features),
        "frechet_judge_distance_train_all_vs_test": frechet_distance_from_features(
            penultimate_features(judge, train_images), test_features),
        "sample_class_histogram": np.bincount(classify(samples), minlength=10).tolist(),
        "jump_experiment": {
            "num_chains": int(len(arrays["final"])),
            "seed": int(arrays["seed"]),
            "max_jump_beta": float(arrays["max_jump_beta"]),
            "jump_points": arrays["jump_points"].tolist(),
            "jump_steps": arrays["jump_steps"].tolist(),
            **{f"agreement_{kind}": shares[kind].round(4).tolist() for kind in ("x_t", "x0_hat", "jump")},
        },
    }
    return results, shares


def judge_test_accuracy(judge):
    """The judge's accuracy on the real Fashion-MNIST test set (float)."""
    images, labels = load_fashion_mnist("test")
    predicted, _ = predict_classes(judge, to_model_range(images))
    return float(np.mean(predicted == labels))
