"""The any-schedule sampler: exact standard DDPM updates, and exact recovery with an oracle."""

import numpy as np
import pytest
import tensorflow as tf

from keras_sd_interp.ddpm.sampler import Sampler, step_noise
from keras_sd_interp.ddpm.schedules import get_schedule, jump_betas, min_jump_steps
from keras_sd_interp.ddpm.unet import build_unet


class NoiseOracle:
    """Predicts the true noise of x given a known x0 and the schedule's a-bar at each step.

    Called with model timesteps 0..m-1 it returns eps = (x - sqrt(a-bar_t) x0) / sqrt(1 - a-bar_t).
    """

    def __init__(self, x0, betas):
        self.x0 = tf.constant(x0, tf.float32)
        self.alpha_bars = tf.constant(np.cumprod(1.0 - betas), tf.float32)

    def __call__(self, inputs, training=False):
        x, timesteps = inputs
        alpha_bar = tf.gather(self.alpha_bars, timesteps)[:, None, None, None]
        return (x - tf.sqrt(alpha_bar) * self.x0) / tf.sqrt(1.0 - alpha_bar)


@pytest.fixture(scope="module")
def small_unet():
    tf.keras.utils.set_random_seed(1)
    model = build_unet(dim=8, groups=2, heads=2, head_dim=8)
    # The final conv starts at zero; give it weights so the noise prediction is not trivial.
    final = model.get_layer("final_conv")
    final.set_weights([np.random.default_rng(0).normal(0, 0.3, w.shape).astype("float32")
                       for w in final.get_weights()])
    return model


def reference_ddpm_chain(model, x, betas, seed):
    """The annotated-diffusion p_sample loop written out in NumPy (float64 constants)."""
    alphas = 1.0 - betas
    alphas_cumprod = np.cumprod(alphas)
    alphas_cumprod_prev = np.concatenate([[1.0], alphas_cumprod[:-1]])
    sqrt_recip_alphas = np.sqrt(1.0 / alphas)
    sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - alphas_cumprod)
    posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
    for i in reversed(range(len(betas))):
        eps = model([x, np.full(len(x), i, np.int32)]).numpy().astype(np.float64)
        mean = sqrt_recip_alphas[i] * (x - betas[i] * eps / sqrt_one_minus_alphas_cumprod[i])
        if i == 0:
            x = mean
        else:
            x = mean + np.sqrt(posterior_variance[i]) * step_noise(x.shape, seed, i).numpy()
        x = x.astype(np.float32)
    return x


def test_training_betas_give_exactly_the_standard_ddpm_update(small_unet):
    train_betas = get_schedule("linear", 300)
    sampler = Sampler(small_unet, train_betas)  # The XLA step, as used for real.
    t = 6
    x_t = np.random.default_rng(2).normal(size=(3, 28, 28, 1)).astype(np.float32)
    ours = sampler.sample_from(x_t, train_betas[: t + 1], seed=5, record=True)
    reference = reference_ddpm_chain(small_unet, x_t, train_betas[: t + 1], seed=5)
    np.testing.assert_allclose(ours["final"], reference, atol=2e-5)
    np.testing.assert_array_equal(ours["x"][t], x_t)
    # Default model timesteps for the training schedule are the steps themselves.
    from keras_sd_interp.ddpm.sampler import nearest_training_timesteps

    np.testing.assert_array_equal(nearest_training_timesteps(train_betas, train_betas), np.arange(300))


def test_restarting_from_x_t_with_the_remaining_betas_reproduces_the_chain(small_unet):
    train_betas = get_schedule("linear", 20)
    sampler = Sampler(small_unet, train_betas, jit_compile=False)
    full = sampler.sample(2, seed=3, record=True)
    rest = sampler.remaining_from(full["x"][9], 9, train_betas[:10], seed=3)
    np.testing.assert_allclose(rest["final"], full["final"], atol=1e-5)


@pytest.mark.parametrize("schedule", [
    get_schedule("linear", 300),
    get_schedule("cosine", 50),
    jump_betas(get_schedule("linear", 300), 299, min_jump_steps(get_schedule("linear", 300), 299)),
    np.array([0.9, 0.5, 0.05, 0.3]),
])
def test_oracle_noise_recovers_x0_under_any_schedule(schedule):
    x0 = np.random.default_rng(4).uniform(-1, 1, size=(2, 28, 28, 1)).astype(np.float32)
    oracle = NoiseOracle(x0, schedule)
    sampler = Sampler(oracle, get_schedule("linear", 300), jit_compile=False)
    x_start = np.random.default_rng(5).normal(size=x0.shape).astype(np.float32)
    out = sampler.sample_from(x_start, schedule, model_timesteps=np.arange(len(schedule)), seed=1,
                              record=True)
    np.testing.assert_allclose(out["final"], x0, atol=2e-4)
    np.testing.assert_allclose(out["x0_hat"][0], x0, atol=2e-4)


def test_clipped_step_is_the_posterior_mean_and_changes_only_out_of_range_predictions():
    from keras_sd_interp.ddpm.sampler import reverse_step

    rng = np.random.default_rng(6)
    x = tf.constant(rng.normal(size=(2, 28, 28, 1)), tf.float32)
    eps = tf.constant(rng.normal(size=(2, 28, 28, 1)) * 0.2, tf.float32)
    noise = tf.zeros_like(x)
    # At a-bar 0.9 these predictions stay inside [-1, 1]: clipping gives the same step.
    args = (0.01, 0.9, 0.9 / 0.99, noise)
    x0_in = reverse_step(x * 0.2, eps, *args)[1].numpy()
    assert np.abs(x0_in).max() < 1.0
    np.testing.assert_allclose(reverse_step(x * 0.2, eps, *args, clip_x0=True)[0],
                               reverse_step(x * 0.2, eps, *args)[0], atol=1e-6)
    # Large x: x0_hat leaves [-1, 1]; the clipped step is q's mean given the clipped prediction.
    step, x0_hat = reverse_step(x * 3.0, eps, *args, clip_x0=True)
    assert np.abs(x0_hat.numpy()).max() == 1.0
    beta, alpha_bar, alpha_bar_prev = 0.01, 0.9, 0.9 / 0.99
    expected = (np.sqrt(alpha_bar_prev) * beta * x0_hat.numpy()
                + np.sqrt(1 - beta) * (1 - alpha_bar_prev) * (x * 3.0).numpy()) / (1 - alpha_bar)
    np.testing.assert_allclose(step, expected, atol=1e-5)
    assert np.abs(step - reverse_step(x * 3.0, eps, *args)[0]).max() > 0.01


def test_sampler_rejects_bad_inputs(small_unet):
    sampler = Sampler(small_unet, get_schedule("linear", 300), jit_compile=False)
    x = np.zeros((1, 28, 28, 1), np.float32)
    with pytest.raises(ValueError, match="open interval"):
        sampler.sample_from(x, [0.5, 1.5])
    with pytest.raises(ValueError, match="one entry per beta"):
        sampler.sample_from(x, [0.1, 0.2], model_timesteps=[1, 2, 3])
    with pytest.raises(ValueError, match=r"in 0..299"):
        sampler.sample_from(x, [0.1, 0.2], model_timesteps=[1, 300])
    with pytest.raises(ValueError, match="past the schedule"):
        sampler.remaining_from(x, 300, [0.1])
