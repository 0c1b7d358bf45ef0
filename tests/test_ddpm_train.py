"""DDPM training resumes from its per-epoch checkpoint; the shipped model loads and samples."""

import json
import os

import numpy as np
import pytest

from keras_sd_interp.ddpm.pretrained import load_ddpm, load_ddpm_sampler
from keras_sd_interp.ddpm.sampler import Sampler
from keras_sd_interp.ddpm.unet import build_unet
from keras_sd_interp.training.ddpm import export_checkpoint, train_ddpm
from test_fashion_mnist import write_idx  # tests/ is on sys.path under pytest


@pytest.fixture
def eager_steps():
    """Runs the training step eagerly. Tracing it costs minutes on a loaded 2-core CPU for each
    `train_ddpm` call, and these tests check checkpoints and resumption, not tracing:
    `test_moving_average_step_by_hand` runs the traced step."""
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


@pytest.fixture
def tiny_idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (32, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, (32,), dtype=np.uint8))
    return str(tmp_path)


@pytest.mark.long  # 15 s
@pytest.mark.usefixtures("eager_steps")
def test_training_writes_a_checkpoint_each_epoch_and_resumes(tiny_idx_dir, tmp_path):
    checkpoint_dir = str(tmp_path / "ckpt")
    options = dict(batch_size=16, timesteps=50, dim=8, seed=0, data_dir=tiny_idx_dir, jit_compile=False)
    _, state = train_ddpm(checkpoint_dir, epochs=1, **options)
    assert state["epochs_done"] == 1 and len(state["epoch_loss"]) == 1
    assert sorted(os.listdir(checkpoint_dir)) == ["ema.weights.h5", "model.weights.h5",
                                                  "optimizer.npz", "state.json"]
    # A checkpoint made before the moving average existed: the rerun starts it from the weights.
    os.remove(os.path.join(checkpoint_dir, "ema.weights.h5"))
    model, state = train_ddpm(checkpoint_dir, epochs=2, **options)  # A rerun: one more epoch only.
    assert state["ema_from_epoch"] == 1
    with open(os.path.join(checkpoint_dir, "state.json")) as f:
        saved = json.load(f)
    assert saved["epochs_done"] == 2 and len(saved["epoch_loss"]) == 2 and saved["settings"]["epochs"] == 2
    assert all(np.isfinite(saved["epoch_loss"]))
    with pytest.raises(ValueError, match="was made with"):
        train_ddpm(checkpoint_dir, epochs=3, **{**options, "dim": 16})
    # Exporting ships the moving average as float16 weights that load back within rounding.
    export_checkpoint(checkpoint_dir, str(tmp_path / "asset"), {"command": "test"},
                      data_dir=tiny_idx_dir)
    shipped, betas, record = load_ddpm(str(tmp_path / "asset"))
    # The export carries the 32 training images' moments (float16) for the matched start.
    with np.load(str(tmp_path / "asset" / "ddpm_data_moments.npz")) as moments:
        assert moments["mean"].shape == (784,) and moments["covariance"].shape == (784, 784)
        from keras_sd_interp.data.fashion_mnist import read_idx

        mean = read_idx(os.path.join(tiny_idx_dir, "train-images-idx3-ubyte")) / 127.5 - 1.0
        mean = (mean + mean[:, :, ::-1]).mean(axis=0).ravel() / 2
        np.testing.assert_allclose(moments["mean"], mean, atol=2e-3)
    assert len(betas) == 50 and record["command"] == "test" and record["epochs_done"] == 2
    assert record["exported_weights"] == "ema" and record["ema_from_epoch"] == 1
    average = build_unet(dim=8)
    average.load_weights(os.path.join(checkpoint_dir, "ema.weights.h5"))
    for ours, theirs in zip(average.get_weights(), shipped.get_weights()):
        np.testing.assert_allclose(theirs, ours, rtol=1e-3, atol=1e-4)
    assert not all(np.allclose(a, w) for a, w in zip(average.get_weights(), model.get_weights()))


@pytest.mark.usefixtures("eager_steps")
def test_resumed_run_trains_and_records_at_its_own_learning_rate(tiny_idx_dir, tmp_path):
    """A fine-tuning phase: the rerun's lower rate is the one Adam uses (not the checkpoint's)."""
    checkpoint_dir = str(tmp_path / "ckpt")
    options = dict(batch_size=16, timesteps=50, dim=8, seed=0, data_dir=tiny_idx_dir,
                   jit_compile=False, max_steps_per_epoch=1)
    train_ddpm(checkpoint_dir, epochs=1, learning_rate=1e-3, **options)
    _, state = train_ddpm(checkpoint_dir, epochs=2, learning_rate=1e-4, **options)
    assert state["epoch_learning_rate"] == [1e-3, 1e-4]
    with np.load(os.path.join(checkpoint_dir, "optimizer.npz")) as arrays:
        # Adam's variables: iteration, learning_rate, then the moments.
        assert int(arrays["var_0"]) == 2
        np.testing.assert_allclose(float(arrays["var_1"]), 1e-4, rtol=1e-6)


def test_moving_average_step_by_hand():
    """One step: ema' = decay * ema + (1 - decay) * w' for every weight."""
    import tensorflow as tf

    from keras_sd_interp.ddpm.schedules import get_schedule
    from keras_sd_interp.ddpm.diffusion import schedule_constants
    from keras_sd_interp.training.ddpm import make_train_step

    # One level, one head: tracing the step is this test's cost; the rule holds for any size.
    size = dict(dim=8, channel_mults=(1,), groups=2, heads=1, head_dim=8)
    model, average = build_unet(**size), build_unet(**size)
    before = [w.copy() for w in average.get_weights()]
    optimizer = tf.keras.optimizers.Adam(1e-3)
    step = make_train_step(model, optimizer,
                           schedule_constants(get_schedule("linear", 50))["alphas_cumprod"],
                           tf.random.Generator.from_seed(0), jit_compile=False,
                           ema_model=average, ema_decay=0.9)
    step(tf.zeros((2, 28, 28, 1)))
    for old, new, weight in zip(before, average.get_weights(), model.get_weights()):
        np.testing.assert_allclose(new, 0.9 * old + 0.1 * weight, rtol=1e-5, atol=1e-6)


@pytest.mark.fashion_mnist
def test_shipped_ddpm_loads_and_its_noise_prediction_beats_zero():
    """The shipped weights predict the noise of real test images far better than chance."""
    import tensorflow as tf

    from keras_sd_interp.data import load_fashion_mnist
    from keras_sd_interp.data.fashion_mnist import to_model_range
    from keras_sd_interp.ddpm.diffusion import q_sample

    model, train_betas, record = load_ddpm()
    assert record["epochs_done"] >= 1 and len(train_betas) == record["settings"]["timesteps"]
    images, _ = load_fashion_mnist("test")
    x0 = to_model_range(images[:64])
    rng = np.random.default_rng(0)
    noise = rng.normal(size=x0.shape).astype(np.float32)
    timesteps = rng.integers(0, len(train_betas), 64).astype(np.int32)
    x_t = q_sample(x0, timesteps, noise, np.cumprod(1 - train_betas))
    mse = float(tf.reduce_mean((model([tf.constant(x_t), tf.constant(timesteps)]) - noise) ** 2))
    assert mse < 0.2, mse  # Predicting zero noise scores 1.0.
    out = Sampler(model, train_betas).sample_from(x_t[:2], train_betas[:3], seed=0)
    assert out["final"].shape == (2, 28, 28, 1) and np.all(np.isfinite(out["final"]))


def test_missing_ddpm_asset_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="DDPM record"):
        load_ddpm(str(tmp_path))
    with pytest.raises(ValueError, match=r"start='zero' is not one of \('matched', 'standard'\)"):
        load_ddpm_sampler(start="zero")


@pytest.mark.fashion_mnist
def test_shipped_ddpm_starts_where_its_training_ended():
    """The matched start's first images have the mean and spread of q(x_{T-1}) on real data."""
    from keras_sd_interp.data import load_fashion_mnist
    from keras_sd_interp.data.fashion_mnist import to_model_range

    sampler, _ = load_ddpm_sampler(jit_compile=False)
    standard, _ = load_ddpm_sampler(start="standard", jit_compile=False)
    assert (sampler.start_name, standard.start_name) == ("matched", "standard")
    alpha_bar = np.prod(1.0 - sampler.train_betas)
    images, _ = load_fashion_mnist("train")
    target = np.sqrt(alpha_bar) * to_model_range(images[:2000]).mean(axis=0)
    start = sampler.initial_noise(2000, seed=0)
    assert np.abs(start.mean(axis=0) - target).max() < 0.1  # per pixel, 2,000 draws
    np.testing.assert_allclose(start.mean(), target.mean(), atol=0.01)  # about -0.095
    assert abs(standard.initial_noise(2000, seed=0).mean() - target.mean()) > 0.08
