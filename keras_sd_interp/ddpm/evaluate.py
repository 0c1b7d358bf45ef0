"""The measured figures of the DDPM: sample quality by Frechet judge distance, and the jump
experiment's answer (how often intermediate images already carry the final sample's class).
"""

import numpy as np
from tqdm import tqdm

from keras_sd_interp.data.fashion_mnist import load_fashion_mnist, to_model_range
from keras_sd_interp.ddpm.jumps import agreement_with_final, run_jump_experiment
from keras_sd_interp.judge.judge import penultimate_features, predict_classes
from keras_sd_interp.judge.frechet import frechet_distance_from_features


def evaluate_ddpm(sampler, judge, num_samples=1000, batch_size=200, jump_points=None,
                  max_jump_beta=0.5, seed=0):
    """Draws `num_samples` samples in batches (batch k uses seed + k) and scores them.

    The first batch also runs the jumps, so the jump experiment covers `batch_size` chains.
    Returns (results, arrays): results is a JSON-ready dict of numbers; arrays holds
    "samples" (N, 28, 28, 1) and the first batch's experiment arrays.
    """
    jump_points = jump_points or list(range(sampler.num_timesteps - 1, 0, -25))
    classify = lambda images: predict_classes(judge, images)[0]  # noqa: E731
    samples, experiment = [], None
    for k in tqdm(range(int(np.ceil(num_samples / batch_size))), desc="sample batches"):
        if k == 0:
            experiment = run_jump_experiment(sampler, batch_size, seed, jump_points, max_jump_beta)
            samples.append(experiment["final"])
        else:
            samples.append(sampler.sample(batch_size, seed=seed + k)["final"])
    samples = np.clip(np.concatenate(samples)[:num_samples], -1.0, 1.0)

    test_images, _ = load_fashion_mnist("test")
    train_images, _ = load_fashion_mnist("train")
    test_features = penultimate_features(judge, test_images)
    floor_rng = np.random.default_rng(seed)
    train_subset = train_images[floor_rng.choice(len(train_images), num_samples, replace=False)]
    shares = agreement_with_final(classify, experiment)
    sample_classes = classify(samples)
    results = {
        "num_samples": int(num_samples),
        "frechet_judge_distance_samples_vs_test": frechet_distance_from_features(
            penultimate_features(judge, samples), test_features),
        "frechet_judge_distance_train_vs_test": frechet_distance_from_features(
            penultimate_features(judge, train_subset), test_features),
        "frechet_judge_distance_train_all_vs_test": frechet_distance_from_features(
            penultimate_features(judge, train_images), test_features),
        "sample_class_histogram": np.bincount(sample_classes, minlength=10).tolist(),
        "jump_experiment": {
            "num_chains": int(batch_size),
            "seed": int(seed),
            "max_jump_beta": max_jump_beta,
            "jump_points": experiment["jump_points"].tolist(),
            "jump_steps": experiment["jump_steps"].tolist(),
            **{f"agreement_{kind}": shares[kind].round(4).tolist() for kind in ("x_t", "x0_hat", "jump")},
        },
    }
    arrays = {"samples": samples, "experiment": experiment, "shares": shares}
    return results, arrays


def judge_test_accuracy(judge):
    """The judge's accuracy on the real Fashion-MNIST test set (float)."""
    images, labels = load_fashion_mnist("test")
    predicted, _ = predict_classes(judge, to_model_range(images))
    return float(np.mean(predicted == labels))
