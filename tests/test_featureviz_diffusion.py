"""featureviz's lucent-style rooms: transforms, penalties, noising, objectives, parametrizations."""

import math

import numpy as np
import pytest
import tensorflow as tf
from keras_cv.src.models.stable_diffusion.constants import _ALPHAS_CUMPROD

from keras_sd_interp.featureviz import objectives as obj
from keras_sd_interp.featureviz import penalties as pen
from keras_sd_interp.featureviz import transforms as tfm
from keras_sd_interp.featureviz.render import VizSettings
from keras_sd_interp.featureviz.param import Parametrization
from keras_sd_interp.sae import SparseAutoencoder


def grid(b=1, h=4, w=6, c=2):
    return tf.constant(np.arange(b * h * w * c, dtype=np.float32).reshape(b, h, w, c))


def test_shift_is_a_circular_roll():
    x = grid()
    np.testing.assert_array_equal(tfm.shift(x, 1, -2).numpy(),
                                  np.roll(x.numpy(), (1, -2), axis=(1, 2)))
    moved = tfm.jitter(x, 2).numpy()
    assert any(np.array_equal(moved, np.roll(x.numpy(), (dy, dx), axis=(1, 2)))
               for dy in range(-2, 3) for dx in range(-2, 3))


def test_affine_identity_half_turn_and_zoom():
    x = grid(h=5, w=5, c=1)
    np.testing.assert_allclose(tfm.affine(x, 0.0, 1.0).numpy(), x.numpy(), atol=1e-5)
    np.testing.assert_allclose(tfm.affine(x, math.pi, 1.0).numpy(),
                               x.numpy()[:, ::-1, ::-1], atol=1e-3)
    # zoom 2 about the centre (2, 2): output (0, 0) samples input (1, 1); (0, 1) samples (1, 1.5)
    zoomed = tfm.affine(x, 0.0, 2.0).numpy()[0, :, :, 0]
    a = x.numpy()[0, :, :, 0]
    assert zoomed[0, 0] == pytest.approx(a[1, 1])
    assert zoomed[0, 1] == pytest.approx((a[1, 1] + a[1, 2]) / 2)


def test_noising_matches_the_schedule():
    rng = np.random.default_rng(0)
    z, eps = rng.standard_normal((2, 2, 3, 4), np.float32), rng.standard_normal((2, 2, 3, 4),
                                                                                 np.float32)
    t = np.array([10, 700])
    abar = np.array([_ALPHAS_CUMPROD[10], _ALPHAS_CUMPROD[700]], np.float32)
    out = tfm.noise_to_timestep(z, tfm.ALPHAS_CUMPROD[t], eps).numpy()
    expected = (np.sqrt(abar)[:, None, None, None] * z
                + np.sqrt(1 - abar)[:, None, None, None] * eps)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_blur_gradient_by_hand():
    g = np.zeros((1, 5, 5, 1), np.float32)
    g[0, 2, 2, 0] = 1.0
    np.testing.assert_array_equal(tfm.blur_gradient(tf.constant(g), tf.constant(0.0)).numpy(), g)
    out = tfm.blur_gradient(tf.constant(g), tf.constant(0.5)).numpy()[0, :, :, 0]
    e = math.exp(-1 / (2 * 0.25))
    w1 = [e / (1 + 2 * e), 1 / (1 + 2 * e), e / (1 + 2 * e)]
    np.testing.assert_allclose(out[1:4, 1:4], np.outer(w1, w1), rtol=1e-5)
    assert out.sum() == pytest.approx(1.0, rel=1e-5)


def test_precondition_scales_each_frequency():
    h, w = 4, 8
    cols = np.arange(w)
    wave = np.cos(2 * np.pi * 2 * cols / w)[None, :].repeat(h, 0)    # kx = 2, ky = 0
    g = np.stack([np.ones((h, w)), wave], -1)[None].astype(np.float32)
    out = tfm.precondition_gradient(tf.constant(g)).numpy()
    np.testing.assert_allclose(out[0, :, :, 0], 1.0, atol=1e-5)         # DC: 1 / (0 + 1)
    np.testing.assert_allclose(out[0, :, :, 1], wave / 3.0, atol=1e-5)  # |f| = 2: 1 / 3


def test_penalties_by_hand():
    z = np.zeros((1, 2, 2, 1), np.float32)
    z[0, :, :, 0] = [[0, 1], [3, 5]]
    # vertical |3-0|, |5-1| -> mean 3.5; horizontal |1-0|, |5-3| -> mean 1.5
    assert float(pen.total_variation(z)[0]) == pytest.approx(5.0)
    assert float(pen.out_of_range(z, bound=3.0)[0]) == pytest.approx((0 + 0 + 0 + 4) / 4)
    m, s = 2.25, np.std([0, 1, 3, 5])
    assert float(pen.moments(z)[0]) == pytest.approx(m ** 2 + (s - 1) ** 2, rel=1e-5)


def test_objectives_compose_per_item():
    acts = {"s": tf.constant(np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3))}
    mean = acts["s"].numpy().mean(axis=(1, 2))                            # (2, 3)
    a, b = obj.channel("s", 0, batch=0), obj.channel("s", 2, batch=1)
    np.testing.assert_allclose((a + b)(acts).numpy(), [mean[0, 0], mean[1, 2]])
    np.testing.assert_allclose((2.0 * a - b)(acts).numpy(), [2 * mean[0, 0], -mean[1, 2]])
    np.testing.assert_allclose(obj.neuron("s", 1, (1, 0))(acts).numpy(),
                               acts["s"].numpy()[:, 1, 0, 1])
    np.testing.assert_allclose(obj.direction("s", [0, 3, 4])(acts).numpy(),
                               mean @ np.array([0, 0.6, 0.8]), rtol=1e-5)
    with pytest.raises(TypeError):
        a * b
    div = obj.diversity("s")(acts).numpy()
    assert div.shape == (2,) and (div < 0).all() and div[0] == pytest.approx(div[1])


def test_sae_feature_is_the_mean_pre_activation():
    sae = SparseAutoencoder(3, expansion=2, k=2, seed=0)
    sae.b_dec.assign([0.5, -1.0, 2.0])
    sae.b_enc.assign(np.arange(6, dtype=np.float32))
    x = np.random.default_rng(0).standard_normal((2, 2, 2, 3)).astype(np.float32)
    pre = sae.pre_activations(tf.constant(x.reshape(-1, 3))).numpy().reshape(2, 4, 6)
    got = obj.sae_feature("s", sae, 4)({"s": tf.constant(x)}).numpy()
    np.testing.assert_allclose(got, pre[:, :, 4].mean(1), rtol=1e-5)


def test_fourier_parametrization_starts_exactly_at_the_start_latent():
    start = np.random.default_rng(0).standard_normal((2, 8, 16, 4)).astype(np.float32)
    for kind in ("direct", "fourier"):
        np.testing.assert_allclose(Parametrization(kind, start).latent().numpy(), start,
                                   atol=1e-5)


def test_presets_carry_the_thesis_settings():
    d = VizSettings.preset("diffusion")
    assert (d.jitter, d.rotate_degrees, d.scale, d.tv, d.range_weight, d.moments_weight,
            d.blur_sigma, d.precondition, d.optimizer, d.learning_rate, d.noise) == (
        2, 20.0, 1.05, 5.0, 1.0, 0.5, 0.5, True, "adamw", 0.05, True)
    p = VizSettings.preset("paper")
    assert (p.start, p.optimizer, p.learning_rate, p.steps, p.timestep_schedule) == (
        "paper", "rms_step", 5.0, 300, "step_index")
    assert VizSettings.preset("lucent").param == "fourier"
    with pytest.raises(ValueError, match="not one of"):
        VizSettings.preset("deepdream")


@pytest.fixture(scope="module")
def random_pipe():
    from keras_sd_interp.models import load_pipeline

    return load_pipeline("tiny", random_weights=True)


@pytest.fixture(scope="module")
def random_unet(random_pipe):
    return random_pipe.diffusion_model


def test_pixel_parametrization_is_the_encoder_of_the_image(random_pipe):
    encoder = random_pipe.image_encoder
    image = np.random.default_rng(0).uniform(-0.9, 0.9, (2, 32, 64, 1)).astype(np.float32)
    param = Parametrization("pixel", image, encoder)
    np.testing.assert_allclose(param.image().numpy(), image, atol=1e-5)   # starts at the image
    np.testing.assert_allclose(param.latent().numpy(), encoder(image).numpy(), atol=1e-4)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(param.latent() ** 2)
    grad = tape.gradient(value, param.variable)
    assert grad.shape == image.shape and float(tf.reduce_max(tf.abs(grad))) > 0
    with pytest.raises(ValueError, match="needs the VAE image encoder"):
        Parametrization("pixel", image)
    with pytest.raises(ValueError, match="has no image"):
        Parametrization("direct", np.zeros((1, 8, 16, 4))).image()


def test_visualize_through_the_vae_encoder(random_pipe, random_unet):
    from keras_sd_interp.featureviz.render import visualize

    settings = VizSettings.preset("diffusion", param="pixel", steps=3, learning_rate=0.05)
    objective = obj.channel("res_block_1", 3)
    result = visualize(random_unet, objective, settings, 2, progress=False,
                       encoder=random_pipe.image_encoder)
    assert result.images.shape == (2, 32, 64, 1) and np.abs(result.images).max() <= 1.0
    np.testing.assert_allclose(result.latents, random_pipe.image_encoder(result.images).numpy(),
                               atol=1e-4)
    assert not np.allclose(result.images, result.images[:, :1, :1])     # pixels moved
    with pytest.raises(ValueError, match="needs encoder=pipe.image_encoder"):
        visualize(random_unet, objective, settings, 1, progress=False)


def test_pixel_shape_of_fixed_and_open_encoders(random_pipe):
    from keras_cv.src.models.stable_diffusion.image_encoder import ImageEncoder

    from keras_sd_interp.featureviz.render import pixel_shape

    assert pixel_shape(random_pipe.image_encoder, (8, 16, 4)) == (32, 64, 1)
    with pytest.raises(ValueError, match="build both at the same image size"):
        pixel_shape(random_pipe.image_encoder, (16, 16, 4))
    # keras-cv's SD encoder is built at (None, None, 3): its factor 8 comes from a probe
    assert pixel_shape(ImageEncoder(download_weights=False), (32, 32, 4)) == (256, 256, 3)


def test_visualize_items_are_independent_and_diffusion_runs(random_unet):
    from keras_sd_interp.featureviz.render import visualize

    site = "res_block_1"
    both = obj.channel(site, 3, batch=0) + obj.channel(site, 5, batch=1)
    settings = VizSettings.preset("paper", steps=3, timestep_schedule="fixed")
    pair = visualize(random_unet, both, settings, 2, progress=False)
    alone = visualize(random_unet, obj.channel(site, 5), settings, 1, progress=False)
    np.testing.assert_allclose(pair.latents[1], alone.latents[0], rtol=1e-4, atol=1e-3)
    assert pair.objective.shape == (3, 2)
    result = visualize(random_unet, both, VizSettings.preset("diffusion", steps=2), 2,
                       timesteps=[100, 900], progress=False)
    assert result.latents.shape == (2, 8, 16, 4) and np.isfinite(result.latents).all()


def test_understand_picks_and_cells():
    from keras_sd_interp.sae import understand

    sel = {"class_": np.array([1, 1, 0, 2]), "share": np.array([0.5, 0.9, 0.4, 1.0]),
           "peak": np.array([1.0, 2.0, 3.0, 0.0])}
    np.testing.assert_array_equal(understand.most_selective(sel, 3), [2, 1, -1])
    images = np.zeros((2, 32, 64, 1), np.uint8)
    images[:, :, 32:] = 255
    crops = understand.cells(images, [0, 1])
    assert crops.shape == (2, 28, 28) and crops[0].max() == 0 and crops[1].min() == 255
