"""Latent descent: paper mode against a re-implementation of the course loop, batching, files."""

import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sd_interp import featureviz as fv
from keras_sd_interp.data.pixels import to_uint8
from keras_sd_interp.models import load_unet
from keras_sd_interp.experiments.filters import visualize_into
from keras_sd_interp.reports.featureviz import FilterFiles


def course_embedding(t, dim, max_period=10000):
    """keras-cv's get_timestep_embedding as the course called it (one timestep)."""
    half = dim // 2
    freqs = np.exp(-math.log(max_period) * np.arange(0, half, dtype="float32") / half)
    args = np.array([t], dtype="float32") * freqs
    return tf.convert_to_tensor(np.concatenate([np.cos(args), np.sin(args)])[None], tf.float32)


def course_descent(unet, layer_index, filter_index, latent, steps, context_length=0):
    """generateMaxActivations.py: an eager sub-model per layer, one filter, eta 5, t = step."""
    model = keras.Model(inputs=unet.inputs, outputs=unet.layers[layer_index].output)
    image = tf.convert_to_tensor(latent)  # float64, (1, h, w, 4)
    context = tf.zeros((1, context_length, unet.inputs[2].shape[-1]))
    dim = unet.inputs[1].shape[-1]
    for i in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(image)
            out = model([image, course_embedding(i, dim), context])
            loss = tf.reduce_mean(out[:, :, :, filter_index])
        grads = tape.gradient(loss, image)
        grads /= tf.math.sqrt(tf.reduce_mean(tf.square(grads))) + 1e-5
        image = image - 5 * grads
    return image.numpy()


@pytest.fixture(scope="module")
def tiny_empty_context(tiny_unet):
    """The fixture's weights in a U-Net built as the paper builds it: max_text_length=0."""
    unet = load_unet("tiny", 32, 64, 0, random_weights=True)
    unet.set_weights(tiny_unet.get_weights())
    return unet


def small_decoder(height=32, width=64, factor=4):
    keras.utils.set_random_seed(3)
    latent = keras.Input((height // factor, width // factor, 4))
    x = keras.layers.UpSampling2D(factor)(latent)
    image = keras.layers.Conv2D(1, 3, padding="same", activation="tanh")(x)
    return keras.Model(latent, image)


def paper_start(unet, seed):
    rng = np.random.default_rng(seed)
    return rng.random((1,) + tuple(unet.inputs[0].shape[1:])) * 20 + 128


@pytest.mark.parametrize("layer_index, filter_index", [(12, 5), (6, 31)])
def test_paper_mode_matches_course_loop_tiny(tiny_unet, tiny_empty_context, layer_index,
                                             filter_index):
    steps = 4
    expected = course_descent(tiny_empty_context, layer_index, filter_index,
                              paper_start(tiny_unet, 7), steps)
    target = fv.layer_target(tiny_unet, layer_index, filter_index)
    # The fixture has context length 5: an all-zero context equals the course's empty one.
    result = fv.optimize_latents(
        tiny_unet, [target], fv.DescentSettings.paper(steps=steps, seed=7), progress=False
    )
    assert result.latents.dtype == np.float64
    assert np.abs(result.latents - expected).max() < 1e-4
    assert np.abs(expected - paper_start(tiny_unet, 7)).max() > 1.0  # it did move


@pytest.mark.long  # builds the full-size SD v1.4 U-Net (about 25 s)
def test_paper_mode_matches_course_loop_sd14(sd14_unet):
    steps = 2
    context_length = sd14_unet.inputs[2].shape[1]
    expected = course_descent(sd14_unet, 6, 218, paper_start(sd14_unet, 1), steps, context_length)
    target = fv.layer_target(sd14_unet, 6, 218)
    result = fv.optimize_latents(
        sd14_unet, [target], fv.DescentSettings.paper(steps=steps, seed=1), progress=False
    )
    assert np.abs(result.latents - expected).max() < 1e-4


def mixed_targets(unet):
    targets = [fv.layer_target(unet, layer, f) for layer, f in [(4, 1), (6, 2), (12, 40), (9, 7)]]
    targets += [fv.conv_target(unet, conv, f) for conv, f in [(1, 3), (2, 3), (7, 60), (3, 9)]]
    targets += [fv.conv_target(unet, 6, f) for f in range(8)]
    return targets


def test_one_filter_in_a_batch_of_16_equals_it_alone(tiny_unet):
    targets = mixed_targets(tiny_unet)
    assert len(targets) == 16
    settings = fv.DescentSettings(mode="paper", steps=5, learning_rate=0.5, seed=3)
    batched = fv.optimize_latents(tiny_unet, targets, settings, progress=False)
    for item in (6,):
        alone = fv.optimize_latents(tiny_unet, [targets[item]], settings, progress=False)
        assert np.abs(alone.latents[0] - batched.latents[item]).max() < 1e-4
        assert np.abs(alone.losses[:, 0] - batched.losses[:, item]).max() < 1e-4
    # Items do not share a gradient: different filters end in different places.
    assert np.abs(batched.latents[2] - batched.latents[6]).max() > 0.1


def test_descent_lowers_and_ascent_raises_the_objective(tiny_unet):
    target = fv.conv_target(tiny_unet, 7, 4)
    down = fv.optimize_latents(tiny_unet, [target], fv.DescentSettings(steps=15), progress=False)
    up = fv.optimize_latents(
        tiny_unet, [target], fv.DescentSettings(steps=15, direction="ascent"), progress=False
    )
    assert down.losses[-1, 0] < down.losses[0, 0] < up.losses[-1, 0]
    assert down.latents.dtype == np.float32


def test_non_finite_stops_with_the_step(tiny_unet):
    settings = fv.DescentSettings.paper(steps=5, learning_rate=1e300)
    with pytest.raises(FloatingPointError, match=r"step \d+ of 5"):
        fv.optimize_latents(tiny_unet, [fv.layer_target(tiny_unet, 12, 0)], settings,
                            progress=False)


def test_paper_uint8_wraps_like_astype_and_corrected_clips():
    images = np.array([-1.0, 0.0, 1.0, 1.5, -2.3, 7.9], np.float32)
    assert list(to_uint8(images, "paper")) == list((images * 127.5 + 127.5).astype("uint8"))
    assert list(to_uint8(images, "corrected")) == [0, 128, 255, 255, 0, 255]


def test_sweep_writes_course_names_and_resumes(tiny_unet, tmp_path):
    decoder = small_decoder()
    targets = [fv.layer_target(tiny_unet, 12, 3), fv.conv_target(tiny_unet, 6, 3)]
    settings = fv.DescentSettings(steps=3)
    written = visualize_into(tiny_unet, decoder, targets, settings, FilterFiles(tmp_path),
                             progress=False)
    assert written == ["layer_12_conv1_filter_3", "layer_12_filter_3"]  # in forward order
    for stem in written:
        for suffix in (".png", "_latent.npy", "_loss.npy", "_loss.png"):
            assert os.path.exists(tmp_path / (stem + suffix))
    assert np.load(tmp_path / "layer_12_filter_3_latent.npy").shape == (8, 16, 4)
    assert np.load(tmp_path / "layer_12_filter_3_loss.npy").shape == (3,)
    assert visualize_into(tiny_unet, decoder, targets, settings, FilterFiles(tmp_path),
                          progress=False) == []


def test_bad_inputs_name_the_valid_range(tiny_unet):
    with pytest.raises(ValueError, match=r"layer 7 has no convs: conv-bearing layers are 4, 6, 9"):
        fv.layer_target(tiny_unet, 7, 0)
    with pytest.raises(ValueError, match=r"layer 70 out of range: .*0\.\.65"):
        fv.layer_target(tiny_unet, 70, 0)
    with pytest.raises(ValueError, match=r"conv 52 out of range: .*0\.\.51"):
        fv.conv_target(tiny_unet, 52, 0)
    with pytest.raises(ValueError, match=r"filter 64 out of range .*0\.\.63"):
        fv.conv_target(tiny_unet, 9, 64)
    with pytest.raises(ValueError, match=r"steps=0 must be a positive"):
        fv.DescentSettings(steps=0)
    with pytest.raises(ValueError, match=r"learning_rate=nan must be a finite"):
        fv.DescentSettings(learning_rate=float("nan"))
    with pytest.raises(ValueError, match=r"img_height=40 .*multiples of 32"):
        load_unet("tiny", 40, 64, 0, random_weights=True)
