"""DAAM on the tiny model (random weights, 3 steps): the maps are the model's attention, the
aggregation is DAAM's, recording changes nothing, bad input is named."""

import numpy as np
import pytest
import tensorflow as tf

from keras_sd_interp.attribution import daam
from keras_sd_interp.cli.daam import check_request

PROMPTS = ["a sneaker and a bag", "a dress"]
STEPS, SEED, GUIDANCE = 3, 0, 5.0


@pytest.fixture(scope="module")
def pipe():
    import keras

    from keras_sd_interp.models import load_pipeline

    keras.utils.set_random_seed(0)
    return load_pipeline("tiny", random_weights=True)


def generate(pipe):
    return pipe.sampler.generate(PROMPTS, num_steps=STEPS, unconditional_guidance_scale=GUIDANCE,
                                 seed=SEED)


@pytest.fixture(scope="module")
def plain(pipe):
    return generate(pipe)


@pytest.fixture(scope="module")
def full(pipe):
    """Every step kept, with queries and keys, and self-attention."""
    with daam.trace(pipe, per_step=True, open_vocabulary=True, self_attention=[0, 2]) as tc:
        generate(pipe)
    return tc


@pytest.fixture(scope="module")
def streaming(pipe):
    with daam.trace(pipe) as tc:
        generate(pipe)
    return tc


def test_recording_leaves_images_bit_identical(plain, full, streaming):
    np.testing.assert_array_equal(full.generation.images, plain.images)
    np.testing.assert_array_equal(streaming.generation.images, plain.images)


def test_probs_equal_softmax_of_tapped_q_and_k(full):
    site = "spatial_transformer_3.attn2"
    q, k, probs = full.trace[f"{site}.q"], full.trace[f"{site}.k"], full.trace[f"{site}.probs"]
    assert probs.shape == (STEPS, 2, 4, 32, 8)
    d = q.shape[-1] // 4
    qh = q.reshape(q.shape[:-1] + (4, d)).transpose(0, 1, 3, 2, 4)     # (s, n, heads, hw, d)
    kh = k.reshape(k.shape[:-1] + (4, d)).transpose(0, 1, 3, 2, 4)
    logits = qh @ kh.swapaxes(-1, -2) / np.sqrt(d)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(daam.attention_probs(q, k, 4).numpy(), probs, atol=1e-6)


def test_aggregation_of_hand_made_maps():
    latent, image = (2, 4), (8, 16)
    # layer 0 at the latent grid (8 positions), layer 1 at half of it (2 positions); 2 heads, 3 tokens
    a = np.zeros((1, 2, 8, 3), np.float32)
    b = np.zeros((1, 2, 2, 3), np.float32)
    a[0, 0, :, 1], a[0, 1, :, 1], b[0, 0, :, 1], b[0, 1, :, 1] = 1.0, 3.0, 2.0, 0.0
    a[0, :, :, 2], b[0, :, :, 2] = -1.0, 5.0          # token 2: negative in layer 0 -> clamped
    out = daam.aggregate([a, b], latent, image, [[1], [2], [1, 2]])
    assert out.shape == (2, 1, 2, 3, 8, 16)
    mean = out.mean(axis=(0, 2))[0]                    # over layers and heads
    np.testing.assert_allclose(mean[0], (1 + 3 + 2 + 0) / 4, rtol=1e-6)
    np.testing.assert_allclose(mean[1], (0 + 0 + 5 + 5) / 4, rtol=1e-6)
    np.testing.assert_allclose(mean[2], (mean[0] + mean[1]) / 2, rtol=1e-6)
    # a non-constant map: the batched resize equals one tf.image.resize per map
    rng = np.random.default_rng(0)
    c = rng.random((2, 2, 8, 3)).astype(np.float32)
    out = daam.aggregate([c], latent, image, [[0], [1, 2]])[0]        # (images, heads, 2, H, W)
    for n in range(2):
        for h in range(2):
            up = tf.image.resize(c[n, h].reshape(2, 4, 3), image, method="bicubic").numpy()
            up = np.maximum(up, 0)
            np.testing.assert_allclose(out[n, h, 0], up[..., 0], atol=1e-6)
            np.testing.assert_allclose(out[n, h, 1], up[..., 1:].mean(-1), atol=1e-6)


class SplittingPipe:
    """A fake pipeline whose tokenizer splits "sneaker" in two sub-tokens (as BPE might)."""

    VOCAB = {"a": 2, "and": 3, "bag": 4, "sneak": 5, "er": 6}

    def tokens(self, prompts):
        rows = []
        for prompt in prompts:
            ids = [0]
            for word in prompt.split():
                ids += [5, 6] if word == "sneaker" else [self.VOCAB.get(word, 9)]
            rows.append(ids + [1] * (8 - len(ids)))
        return np.array(rows)


def test_sub_tokens_of_a_split_word_are_averaged():
    tokens = daam.Tokens(SplittingPipe())
    assert tokens.split("sneaker") == [5, 6]
    indices = tokens.word_indices("a sneaker and a bag", "sneaker")
    assert indices == [2, 3]                           # offset 1 for the start token
    assert tokens.word_indices("a sneaker and a bag", "bag") == [6]
    assert daam.word_token_indices([0, 2, 4, 3, 2, 4, 1, 1], [4]) == [2, 5]  # both occurrences
    maps = np.zeros((1, 1, 8, 8), np.float32)
    maps[..., 2], maps[..., 3] = 1.0, 3.0
    out = daam.aggregate([maps], (2, 4), (4, 8), [indices])
    np.testing.assert_allclose(out[0, 0, 0, 0], 2.0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"'boot'.*\['a', 'sneaker', 'and', 'a', 'bag'\]"):
        tokens.word_indices("a sneaker and a bag", "boot")


def test_tiny_word_tokens(full):
    assert full.token_indices("sneaker", 0) == [2]
    assert full.token_indices("a", 0) == [1, 4]
    assert full.words(1) == ["a", "dress"]


def test_streaming_and_per_step_give_the_same_global_map(full, streaming):
    for word in ("sneaker", "bag"):
        np.testing.assert_allclose(full.heat_map(word, 0), streaming.heat_map(word, 0),
                                   rtol=1e-5, atol=1e-6)
    assert streaming.memory_bytes() * STEPS == pytest.approx(
        sum(full.trace[f"spatial_transformer_{i}.attn2.probs"].nbytes for i in range(16)))


def test_per_step_maps_sum_to_the_global_map(full):
    layers = full.default_layers()
    summed = [full.summed(f"spatial_transformer_{i}.attn2.probs", 0) for i in layers]
    group = [full.token_indices("bag", 0)]
    linear = daam.aggregate(summed, full.latent_hw, full.image_hw, group, clamp=False)
    steps, indices = full.per_step("bag", 0, clamp=False)
    assert steps.shape == (STEPS, 32, 64) and indices == [0, 1, 2]
    np.testing.assert_allclose(steps.sum(0), linear[:, :, 0].mean((0, 1)), rtol=1e-5, atol=1e-6)
    # clamped per step (the paper's order) vs clamped after the sum (DAAM's code): close
    clamped, _ = full.per_step("bag", 0)
    global_map = full.heat_map("bag", 0)
    assert np.all(clamped.sum(0) >= global_map - 1e-5)
    assert np.abs(clamped.sum(0) - global_map).mean() < 0.02 * global_map.mean()
    # steps= at compute time selects among the recorded steps
    np.testing.assert_allclose(full.heat_map("bag", 0, steps=[0, 1, 2]), global_map, rtol=1e-5)


def test_per_layer_and_per_head_average_to_the_global_map(full):
    layer_maps, layers = full.per_layer("bag", 0)
    head_maps, heads = full.per_head("bag", 0)
    assert layers == full.default_layers() and 6 not in layers     # tiny's 1x2 map left out
    assert heads == [0, 1, 2, 3]
    np.testing.assert_allclose(layer_maps.mean(0), full.heat_map("bag", 0), rtol=1e-5)
    np.testing.assert_allclose(head_maps.mean(0), full.heat_map("bag", 0), rtol=1e-5)
    one = full.heat_map("bag", 0, layers=[3], heads=[1])
    np.testing.assert_allclose(one, full.per_layer("bag", 0, layers=[3], heads=[1])[0][0])
    coarse = full.heat_map("bag", 0, resolutions=[(4, 8)])
    np.testing.assert_allclose(coarse, full.heat_map("bag", 0, layers=[2, 3, 10, 11, 12]))


def test_open_vocabulary_map_of_a_prompt_word_equals_its_map(full):
    np.testing.assert_allclose(full.open_vocabulary_map("bag", 0), full.heat_map("bag", 0),
                               rtol=1e-5, atol=1e-6)
    other = full.open_vocabulary_map("boot", 0)
    assert other.shape == (32, 64) and np.all(np.isfinite(other)) and other.min() >= 0


def test_attention_rollout_by_hand():
    first = np.array([[[1.0, 0.0], [0.25, 0.75]]])                    # (heads 1, 2, 2)
    second = np.array([[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.9, 0.1]]])   # 2 heads
    a1 = 0.5 * first[0] + 0.5 * np.eye(2)                               # [[1, 0], [.125, .875]]
    a2 = 0.5 * second.mean(0) + 0.5 * np.eye(2)                         # [[1, 0], [.35, .65]]
    rollout = daam.attention_rollout([first, second])
    np.testing.assert_allclose(rollout, a2 @ a1)
    np.testing.assert_allclose(rollout, [[1.0, 0.0], [0.35 + 0.65 * 0.125, 0.65 * 0.875]])
    np.testing.assert_allclose(daam.attention_rollout([np.eye(3)[None]]), np.eye(3))


@pytest.fixture(scope="module")
def rolled(pipe):
    with daam.trace(pipe, text_rollout=True) as tc:
        pipe.sampler.generate(PROMPTS, batch_size=2, num_steps=STEPS, seed=SEED,
                              unconditional_guidance_scale=GUIDANCE)
    return tc


def test_text_rollout_maps_are_the_rollout_weighted_token_maps(rolled):
    rollout = rolled.rollout(0)
    assert rollout.shape == (8, 8)
    np.testing.assert_allclose(rollout.sum(1), 1.0)
    assert np.all(np.triu(rollout, 1) == 0)                  # the encoder is causal
    # images 0, 1 are the first prompt's, 2, 3 the second's
    np.testing.assert_allclose(rolled.rollout(1), rollout)
    assert not np.allclose(rolled.rollout(2), rollout)
    layers = rolled.default_layers()
    summed = [rolled.summed(f"spatial_transformer_{i}.attn2.probs", 0) for i in layers]
    tokens = daam.aggregate(summed, rolled.latent_hw, rolled.image_hw,
                            [[t] for t in range(8)]).mean((0, 1))          # (8, H, W)
    bag = rolled.token_indices("bag", 0)
    by_hand = np.einsum("j,jhw->hw", rollout[:, bag].mean(1), tokens)
    np.testing.assert_allclose(rolled.heat_map("bag", 0), by_hand, rtol=1e-4, atol=1e-7)
    # switched off, the same trace gives DAAM as published
    rolled.text_rollout = False
    try:
        np.testing.assert_allclose(rolled.heat_map("bag", 0), tokens[bag].mean(0), rtol=1e-5,
                                   atol=1e-7)
    finally:
        rolled.text_rollout = True


def test_rollout_needs_the_text_records(streaming):
    with pytest.raises(ValueError, match="text_rollout=True"):
        streaming.rollout(0)


def test_self_attention_map(full):
    sa = full.self_attention_map((16, 10), 0)
    assert sa.shape == (32, 64) and sa.min() >= 0
    with pytest.raises(ValueError, match=r"pixel \(40, 10\).*y in 0..31"):
        full.self_attention_map((40, 10), 0)


def test_normalize_group_weights_and_map_grid_by_hand():
    m = np.array([[[2.0, 4.0], [3.0, 6.0]], [[1.0, 1.0], [1.0, 1.0]]])     # (2, H 2, W 2)
    np.testing.assert_allclose(daam.normalize(m), [[[0, 0.5], [0.25, 1]], np.zeros((2, 2))])
    np.testing.assert_array_equal(daam.group_weights([[1], [0, 2], [2, 2]], 3),
                                  [[0, 0.5, 0], [1, 0, 0], [0, 0.5, 1]])
    assert daam.map_grid(32, (8, 16)) == (4, 8, 2) and daam.map_grid(2, (8, 16)) == (1, 2, 8)
    with pytest.raises(ValueError, match="do not tile"):
        daam.map_grid(3, (8, 16))


def test_heat_maps_views_are_means_over_its_axes():
    maps = np.arange(12, dtype=np.float32).reshape(2, 3, 2, 1, 1)     # 2 layers, 3 heads, 2 words
    heat_maps = daam.HeatMaps(maps, ["sneaker", "bag"], [4, 7], [0, 1, 2], "a sneaker and a bag")
    per_layer, layers = heat_maps.per_layer("bag")                    # bag: 6 l + 2 h + 1
    assert layers == [4, 7] and per_layer.ravel().tolist() == [3.0, 9.0]
    per_head, heads = heat_maps.per_head("bag")
    assert heads == [0, 1, 2] and per_head.ravel().tolist() == [4.0, 6.0, 8.0]
    assert heat_maps.word("bag").item() == 6.0
    assert {w: m.item() for w, m in heat_maps.global_maps().items()} == {"sneaker": 5.0,
                                                                         "bag": 6.0}
    with pytest.raises(ValueError, match=r"'boot' was not computed.*\['sneaker', 'bag'\]"):
        heat_maps.per_layer("boot")


@pytest.mark.parametrize("rollout", [False, True])
def test_heat_maps_equal_the_from_scratch_aggregation(full, rolled, rollout):
    """One aggregation per image; each view equals the maps aggregated word by word."""
    tc = rolled if rollout else full
    result = tc.compute_heat_maps(0)
    assert result.words == ["a", "sneaker", "and", "a", "bag"] and result.prompt == PROMPTS[0]
    assert result.layers == tc.default_layers() and result.heads == [0, 1, 2, 3]
    assert result.maps.shape == (15, 4, 5, 32, 64) and result.text_rollout == rollout
    summed = [tc.summed(f"spatial_transformer_{i}.attn2.probs", 0) for i in result.layers]
    for word in ("sneaker", "bag", "a"):
        weights = tc.word_weights([word], 0)
        alone = daam.aggregate(summed, tc.latent_hw, tc.image_hw, None, weights=weights)[:, :, 0]
        np.testing.assert_allclose(result.word(word), alone.mean((0, 1)), rtol=1e-6, atol=0)
        np.testing.assert_allclose(result.per_layer(word)[0], alone.mean(1), rtol=1e-6, atol=0)
        np.testing.assert_allclose(result.per_head(word)[0], alone.mean(0), rtol=1e-6, atol=0)
        np.testing.assert_array_equal(result.per_layer(word)[0], tc.per_layer(word, 0)[0])
        np.testing.assert_array_equal(result.per_head(word)[0], tc.per_head(word, 0)[0])
        np.testing.assert_array_equal(result.word(word), tc.heat_map(word, 0))


def test_a_word_grid_aggregates_once(full, monkeypatch):
    from keras_sd_interp.attribution.daam import tracing

    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return daam.aggregate(*args, **kwargs)

    monkeypatch.setattr(tracing, "aggregate", counted)
    result = full.compute_heat_maps(0, layers=[2, 3])
    for word in result.global_maps():
        result.per_layer(word), result.per_head(word)
    assert len(calls) == 1


def test_mask():
    m = np.array([[0.0, 1.0], [0.5, 0.3]])
    np.testing.assert_array_equal(daam.mask(m, 0.4), [[False, True], [True, False]])
    assert daam.mask(np.ones((2, 2)), 0.4).sum() == 0     # a flat map has no object


@pytest.mark.parametrize("call, message", [
    (lambda tc: tc.heat_map("boot", 0), r"'boot' is not in the prompt.*\['a', 'sneaker'"),
    (lambda tc: tc.heat_map("bag", 0, layers=[16]), r"layer 16 out of range: layers are 0..15"),
    (lambda tc: tc.heat_map("bag", 0, heads=[4]), r"head 4 out of range: heads are 0..3"),
    (lambda tc: tc.heat_map("bag", 5), r"image 5 out of range.*0..1"),
    (lambda tc: tc.heat_map("bag", 0, resolutions=[(3, 3)]), r"\(3, 3\).*\(8, 16\)"),
    (lambda tc: tc.heat_map("bag", 0, steps=[7]), r"step 7 was not recorded.*0..2"),
])
def test_bad_input_on_a_trace(full, call, message):
    with pytest.raises(ValueError, match=message):
        call(full)


def test_streaming_trace_refuses_step_selection(streaming):
    with pytest.raises(ValueError, match="per_step=True"):
        streaming.per_step("bag", 0)
    with pytest.raises(ValueError, match="open_vocabulary=True"):
        streaming.open_vocabulary_map("boot", 0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(prompts=["a sneaker and a bag"], words=["boot"]), r"'boot' is in no prompt.*'bag'"),
    (dict(prompts=[""]), r"prompt='' is empty"),
    (dict(prompts=["a bag"], layers=[16]), r"layer 16 out of range: layers are 0..15"),
    (dict(prompts=["a bag"], heads=[-1]), r"head -1 out of range: heads are 0..3"),
    (dict(prompts=["a bag"], tau=1.5), r"tau=1.5: use a number in \[0, 1\]"),
    (dict(prompts=["a bag and a bag and a bag"]), r"10 tokens long.*at most 8"),
    (dict(prompts=["a cat"]), r"unknown words \['cat'\].*'sneaker'"),
    (dict(prompts=[]), r"no prompt"),
])
def test_bad_requests_are_named_before_any_model(kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_request("tiny", **kwargs)


def test_sd14_request_checks_need_no_vocabulary():
    check_request("sd14", ["a smiling, red cat chewing gum"], ["cat"], heads=[7])
    with pytest.raises(ValueError, match="head 8 out of range: heads are 0..7"):
        check_request("sd14", ["a cat"], heads=[8])
    assert daam.map_grid(64, (64, 64)) == (8, 8, 8)     # sd14's 8x8 maps at 512 px: factor 8


@pytest.mark.slow
def test_sd14_maps_with_tokens_given_directly():
    """SD v1.4 (random weights, 64x64: latent 8x8, maps 8x8..1x1) with token ids given directly
    (CLIP's BPE vocabulary is not needed): 8 heads, 77 tokens, upscale x8, 1/8 maps left out."""
    import keras

    from keras_sd_interp.models import load_pipeline

    keras.utils.set_random_seed(1)
    pipe = load_pipeline("sd14", img_height=64, img_width=64, random_weights=True)
    vocab = {"a": 320, "cat": 2368, "chewing": 30353, "gum": 12907}

    def tokens(prompts):
        rows = [[49406] + [vocab[w] for w in p.split()] for p in prompts]
        return np.array([r + [49407] * (77 - len(r)) for r in rows], np.int32)

    pipe.tokens = tokens
    with daam.trace(pipe) as tc:
        gen = pipe.sampler.generate("a cat chewing gum", num_steps=2, seed=0)
    assert gen.images.shape == (1, 64, 64, 3)
    assert tc.trace["spatial_transformer_0.attn2.probs"].shape == (1, 8, 64, 77)
    assert tc.default_layers() == [i for i in range(16) if i != 6]   # the 1x1 map (1/8)
    assert tc.token_indices("gum") == [4]
    maps = tc.heat_maps(image=0)
    assert list(maps) == ["a", "cat", "chewing", "gum"] and maps["cat"].shape == (64, 64)
    assert tc.per_head("cat")[0].shape == (8, 64, 64)
