"""The matched start: a Gaussian with the first two moments of the forward process's last step."""

import numpy as np
import pytest

from keras_sd_interp.ddpm.diffusion import q_sample
from keras_sd_interp.ddpm.prior import MatchedStart, ablation_starts, data_moments
from keras_sd_interp.ddpm.schedules import get_schedule


def correlated_images(n, rng):
    """(n, 4, 4, 1) images: a shared brightness plus a left-right gradient, in [-1, 1]-ish."""
    brightness = rng.normal(-0.4, 0.3, (n, 1, 1, 1))
    gradient = rng.normal(0.0, 0.2, (n, 1, 1, 1)) * np.linspace(-1, 1, 4)[None, None, :, None]
    return (brightness + gradient + rng.normal(0, 0.05, (n, 4, 4, 1))).astype(np.float32)


def test_data_moments_count_each_image_and_its_mirror():
    images = np.zeros((2, 3, 3, 1))
    images[0, :, 0] = 1.0  # left column lit
    mean, covariance = data_moments(images)
    np.testing.assert_allclose(mean.reshape(3, 3), [[0.25, 0, 0.25]] * 3)
    assert covariance.shape == (9, 9)
    np.testing.assert_allclose(covariance, covariance.T)


def test_matched_start_has_the_moments_of_the_noised_data():
    rng = np.random.default_rng(0)
    x0 = correlated_images(20000, rng)
    x0 = np.concatenate([x0, x0[:, :, ::-1]])  # the training flip, as data_moments assumes
    # Step 150 (a-bar 0.47) rather than the last (0.048), so the data's share is well above
    # the sampling error of the checks; the algebra is the same at every step.
    alphas_cumprod = np.cumprod(1 - get_schedule("linear", 300))
    step = np.full(len(x0), 150, np.int32)
    noised = q_sample(x0, step, rng.normal(size=x0.shape).astype(np.float32), alphas_cumprod).numpy()

    start = MatchedStart(*data_moments(x0), alphas_cumprod[150])
    drawn = start(rng.normal(size=(40000, 4, 4, 1)))
    assert drawn.shape == (40000, 4, 4, 1) and drawn.dtype == np.float32
    flat = lambda a: a.reshape(len(a), -1)  # noqa: E731
    np.testing.assert_allclose(drawn.mean(axis=0), noised.mean(axis=0), atol=0.02)
    np.testing.assert_allclose(np.cov(flat(drawn), rowvar=False),
                               np.cov(flat(noised), rowvar=False), atol=0.03)
    # What N(0, I) misses: x_150 is shifted and its pixels are correlated (about 0.05).
    assert noised.mean() < -0.2 and np.cov(flat(noised), rowvar=False)[0, 5] > 0.03


def test_matched_start_is_standard_noise_when_nothing_is_left_of_the_image():
    mean, covariance = data_moments(correlated_images(500, np.random.default_rng(1)))
    noise = np.random.default_rng(2).normal(size=(3, 4, 4, 1))
    np.testing.assert_allclose(MatchedStart(mean, covariance, 0.0)(noise), noise, rtol=1e-6, atol=1e-6)


def test_matched_start_refuses_mismatched_shapes():
    mean, covariance = np.zeros(16), np.eye(16)
    with pytest.raises(ValueError, match=r"noise of shape \(2, 28, 28, 1\) has 784 values per image; "
                                         r"this start has 16"):
        MatchedStart(mean, covariance, 0.05)(np.zeros((2, 28, 28, 1)))
    with pytest.raises(ValueError, match=r"covariance has shape \(9, 9\); .* needs \(16, 16\)"):
        MatchedStart(mean, np.eye(9), 0.05)
    with pytest.raises(ValueError, match=r"alpha_bar=1.0 must be in \[0, 1\)"):
        MatchedStart(mean, covariance, 1.0)


def test_ablation_starts_go_from_standard_noise_to_the_full_match():
    mean, covariance = data_moments(correlated_images(2000, np.random.default_rng(3)))
    starts = ablation_starts(mean, covariance, 0.5)
    noise = np.random.default_rng(4).normal(size=(5000, 4, 4, 1))
    drawn = {name: start(noise).reshape(5000, -1) for name, start in starts.items()}
    np.testing.assert_allclose(drawn["standard N(0, I)"], noise.reshape(5000, -1), atol=1e-6)
    shift = np.sqrt(0.5) * mean
    for name in ("mean only", "mean and per-pixel variance", "matched (mean and covariance)"):
        np.testing.assert_allclose(drawn[name].mean(axis=0), shift, atol=0.05)
    target = 0.5 * covariance + 0.5 * np.eye(16)
    np.testing.assert_allclose(np.cov(drawn["matched (mean and covariance)"], rowvar=False), target, atol=0.05)
    np.testing.assert_allclose(np.var(drawn["mean and per-pixel variance"], axis=0), np.diag(target), atol=0.05)
    assert np.abs(np.cov(drawn["mean only"], rowvar=False) - np.eye(16)).max() < 0.06
