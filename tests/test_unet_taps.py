"""The rebuilt U-Net's sites on the tiny config: values checked by hand from the weights."""

import numpy as np
import pytest
import tensorflow as tf

from keras_sd_interp.lens import taps
from keras_sd_interp.lens import sites
from tests.conftest import random_unet_inputs


def group_norm(x, gamma, beta, groups, eps=1e-5):
    """GroupNormalization by hand: x (b, h, w, c) normalised over (h, w, c // groups)."""
    b, h, w, c = x.shape
    grouped = x.reshape(b, h, w, groups, c // groups)
    mean = grouped.mean(axis=(1, 2, 4), keepdims=True)
    var = grouped.var(axis=(1, 2, 4), keepdims=True)
    normed = ((grouped - mean) / np.sqrt(var + eps)).reshape(b, h, w, c)
    return normed * gamma + beta


def swish(x):
    return x / (1 + np.exp(-x))


def conv3x3(x, kernel, bias):
    """'same' 3x3 convolution with zero padding 1, by explicit sums over the 9 taps."""
    b, h, w, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((b, h, w, kernel.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy : dy + h, dx : dx + w, :] @ kernel[dy, dx]
    return out + bias


def test_resblock_conv_taps_match_hand_computation(tiny_unet):
    inputs = random_unet_inputs(tiny_unet, 2)
    names = [
        "spatial_transformer_2", "time_embed.dense_1", "res_block_3.conv1_raw",
        "res_block_3.conv1", "res_block_3.conv2", "res_block_3.residual", "layer_14",
    ]
    _, acts = taps.run_with_cache(tiny_unet, inputs, names)
    acts = {k: v.numpy().astype("float64") for k, v in acts.items()}
    block = tiny_unet.layers[14]
    w = [v.numpy().astype("float64") for v in block.weights]
    # weights: norm1 (gamma, beta), conv1 (kernel, bias), dense (kernel, bias), norm2, conv2
    x = acts["spatial_transformer_2"]
    conv1_raw = conv3x3(swish(group_norm(x, w[0], w[1], groups=8)), w[2], w[3])
    embedding = swish(acts["time_embed.dense_1"]) @ w[4] + w[5]
    conv1 = conv1_raw + embedding[:, None, None, :]
    np.testing.assert_allclose(acts["res_block_3.conv1_raw"], conv1_raw, atol=1e-4)
    np.testing.assert_allclose(acts["res_block_3.conv1"], conv1, atol=1e-4)
    conv2 = conv3x3(swish(group_norm(conv1, w[6], w[7], groups=8)), w[8], w[9])
    np.testing.assert_allclose(acts["res_block_3.conv2"], conv2, atol=1e-4)
    np.testing.assert_allclose(acts["res_block_3.residual"], x, atol=0)  # same width: identity
    np.testing.assert_allclose(
        acts["res_block_3.conv2"] + acts["res_block_3.residual"], acts["layer_14"], atol=1e-5
    )


def test_conv2_plus_projected_residual_is_layer_output(tiny_unet):
    # res_block_2 widens 32 -> 64, so its residual is the 1x1 projection of its input.
    inputs = random_unet_inputs(tiny_unet, 2, seed=1)
    _, acts = taps.run_with_cache(
        tiny_unet, inputs, ["downsample_0", "res_block_2.conv2", "res_block_2.residual", 12]
    )
    projection = tiny_unet.layers[12].residual_projection.conv2d
    expected = acts["downsample_0"].numpy() @ projection.kernel.numpy()[0, 0] + projection.bias
    np.testing.assert_allclose(acts["res_block_2.residual"], expected, atol=1e-5)
    np.testing.assert_allclose(
        acts["res_block_2.conv2"] + acts["res_block_2.residual"], acts["layer_12"], atol=1e-5
    )


def test_attention_probabilities_sum_to_one_over_keys(tiny_unet):
    inputs = random_unet_inputs(tiny_unet, 2, seed=2)
    names = [f"spatial_transformer_{i}.attn{j}.probs" for i in range(16) for j in (1, 2)]
    _, acts = taps.run_with_cache(tiny_unet, inputs, names)
    for name in names:
        probs = acts[name].numpy()
        assert probs.shape[:2] == (2, 4), name  # (batch, heads, queries, keys)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5, err_msg=name)
        assert probs.min() >= 0


def test_replacing_cross_attention_probs(tiny_unet):
    inputs = random_unet_inputs(tiny_unet, 2, seed=3)
    site = "spatial_transformer_3.attn2.probs"
    plain, recorded = taps.run_with_cache(tiny_unet, inputs, [site])
    same, _ = taps.run_with_hooks(
        tiny_unet, inputs, {site: sites.replace_with(recorded[site])}
    )
    np.testing.assert_allclose(same, plain, atol=1e-6)
    uniform = tf.fill(recorded[site].shape, 1.0 / recorded[site].shape[-1])
    changed, _ = taps.run_with_hooks(tiny_unet, inputs, {site: sites.replace_with(uniform)})
    assert np.abs(changed - plain).max() > 1e-3
    # Editing only batch item 1 leaves item 0 alone.
    one, _ = taps.run_with_hooks(
        tiny_unet, inputs, {site: sites.replace_with(uniform, batch=[1])}
    )
    np.testing.assert_allclose(one[0], plain[0], atol=1e-6)
    np.testing.assert_allclose(one[1], changed[1], atol=1e-5)


def test_token_selective_edit_touches_only_chosen_tokens(tiny_unet):
    inputs = random_unet_inputs(tiny_unet, 1, seed=4)
    site = "spatial_transformer_0.attn2.probs"
    _, edited = taps.run_with_hooks(
        tiny_unet, inputs, {site: sites.scale(0.0, axis=-1, indices=[1, 3])}, record=[site]
    )
    _, plain = taps.run_with_cache(tiny_unet, inputs, [site])
    probs, ref = edited[site].numpy(), plain[site].numpy()
    assert np.all(probs[..., [1, 3]] == 0)
    np.testing.assert_allclose(probs[..., [0, 2, 4]], ref[..., [0, 2, 4]], atol=1e-7)


def test_tap_model_inside_tf_function_and_gradient_tape(tiny_unet):
    inputs = random_unet_inputs(tiny_unet, 3, seed=5)
    tap = taps.tap_model(tiny_unet, ["conv_9", "res_block_3.conv1", 12])
    assert taps.tap_model(tiny_unet, ["conv_9", "res_block_3.conv1", 12]) is tap  # cached
    eager = tap(inputs)
    assert set(eager) == {"conv_9", "res_block_3.conv1", "layer_12"}

    @tf.function
    def loss_and_grad(latent):
        with tf.GradientTape() as tape:
            tape.watch(latent)
            acts = tap([latent, inputs[1], inputs[2]])
            loss = tf.reduce_mean(acts["res_block_3.conv1"][..., 7])
        return acts, tape.gradient(loss, latent)

    compiled, grad = loss_and_grad(tf.constant(inputs[0]))
    for key in eager:
        np.testing.assert_allclose(compiled[key], eager[key], atol=1e-4)
    assert grad.shape == inputs[0].shape and np.abs(grad.numpy()).max() > 0
    _, cache = taps.run_with_cache(tiny_unet, inputs, ["conv_9"])
    np.testing.assert_allclose(eager["conv_9"], cache["conv_9"], atol=1e-5)


@pytest.mark.long  # 25 s
def test_empty_context_batch_of_two_has_gradients_and_equals_zero_token():
    from keras_sd_interp.models import load_unet

    empty = load_unet("tiny", 32, 32, 0, random_weights=True)
    one = load_unet("tiny", 32, 32, 1, random_weights=True)
    one.set_weights(empty.get_weights())
    latent, t_emb = random_unet_inputs(empty, 2, seed=6)[:2]
    latent, t_emb = tf.constant(latent), tf.constant(t_emb)
    with tf.GradientTape() as tape:
        tape.watch(latent)
        out = empty([latent, t_emb, tf.zeros((2, 0, 64))])
        loss = tf.reduce_mean(out)
    assert np.isfinite(tape.gradient(loss, latent).numpy()).all()
    np.testing.assert_allclose(one([latent, t_emb, tf.zeros((2, 1, 64))]), out, atol=1e-5)
    # Names are fixed by position: a second model in the same process has the same sites.
    assert taps.layer_name(one, 14) == taps.layer_name(empty, 14) == "res_block_3"


def test_list_taps_shapes(tiny_unet):
    shapes = taps.tap_shapes(tiny_unet)
    assert shapes["latent"] == (8, 16, 4)
    assert shapes["res_block_3.conv1"] == (4, 8, 64)
    assert shapes["spatial_transformer_3.attn2.probs"] == (4, 32, 5)
    assert shapes["spatial_transformer_0.attn1.probs"] == (4, 128, 128)
    assert shapes["conv_out"] == (8, 16, 4)
    # inputs, layer outputs, 4 per ResBlock, 11 per transformer (attn1 and attn2: q, k, v, probs,
    # output; the feed-forward)
    assert len(shapes) == 3 + 63 + 22 * 4 + 16 * 11


@pytest.mark.parametrize(
    "address, message",
    [
        (70, "layer 70 out of range: the U-Net has layers 0..65"),
        ("layer_66", "layer 66 out of range"),
        ("conv_52", "conv 52 out of range: the U-Net has 3x3 convs 0..51"),
        ("res_block_3.conv3", "unknown tap 'res_block_3.conv3'"),
        ("not_a_layer", "unknown tap 'not_a_layer'"),
    ],
)
def test_bad_addresses_raise_clear_errors(tiny_unet, address, message):
    with pytest.raises(ValueError, match=message):
        taps.tap_model(tiny_unet, [address])


def test_filter_past_channel_count(tiny_unet):
    assert taps.check_channel(tiny_unet, "conv_9", 63) == 63
    with pytest.raises(ValueError, match="filter 64 out of range for res_block_3.conv2: it has "
                                         "channels 0..63"):
        taps.check_channel(tiny_unet, "conv_9", 64)


def test_bad_image_size_and_model_name():
    from keras_sd_interp.models import SDUNet, get_config

    with pytest.raises(ValueError, match="img_height=40 is not valid for the 'tiny' U-Net"):
        SDUNet(40, 64, 5, config="tiny")
    with pytest.raises(ValueError, match="unknown model 'sd15'"):
        get_config("sd15")
