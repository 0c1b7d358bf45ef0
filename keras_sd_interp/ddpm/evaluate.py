"""The measured figures of the DDPM: sample quality by Frechet judge distance, and the jump
experiment's answer (how often intermediate images already carry the final sample's class).

Generating is the slow half and needs no judge, so it is separate from scoring; the batches are
cached on disk, resumably, by `reports.ddpm.generate_eval_batches`.
"""

import numpy as np

from keras_sd_interp.data.fashion_mnist import load_fashion_mnist, to_model_range
from keras_sd_interp.ddpm.jumps import agreement_with_final, run_jump_experiment
from keras_sd_interp.judge.frechet import frechet_distance_from_features
from keras_sd_interp.judge.judge import penultimate_features, predict_classes

EXPERIMENT_KEYS = ("jump_points", "jump_steps", "final", "x_t", "x0_hat", "jump")


def default_jump_points(sampler):
    """Every 25th training step from the last: T - 1, T - 26, ... (above 0)."""
    return list(range(sampler.num_timesteps - 1, 0, -25))


def eval_batch(sampler, index, batch_size=200, jump_points=None, max_jump_beta=0.5, seed=0):
    """Batch `index` of the evaluation samples (seed + index), a dict of arrays. Batch 0 also
    runs the jumps, so the jump experiment covers `batch_size` chains; the others hold only
    "final" (batch_size, 28, 28, 1). Every batch also holds the sampler's `settings`."""
    settings = {key: np.asarray(value) for key, value in sampler.settings.items()}
    if index == 0:
        jump_points = jump_points or default_jump_points(sampler)
        experiment = run_jump_experiment(sampler, batch_size, seed, jump_points, max_jump_beta)
        arrays = {key: experiment[key] for key in EXPERIMENT_KEYS}
        arrays.update(max_jump_beta=np.float64(max_jump_beta), seed=np.int64(seed), **settings)
        return arrays
    return {"final": sampler.sample(batch_size, seed=seed + index)["final"], **settings}


def eval_arrays(batches):
    """Joins evaluation batches (batch 0 first): batch 0's experiment arrays plus "samples"
    (N, 28, 28, 1), every batch's final images clipped to [-1, 1]."""
    arrays = dict(batches[0])
    finals = [batch["final"] for batch in batches]
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
        "start": str(arrays.get("start", "standard")),
        "clip_x0": bool(arrays.get("clip_x0", False)),
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
