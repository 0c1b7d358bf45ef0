"""The tiny CLIP: a keras_cv.models.CLIP at small width whose text tower is the tiny
pipeline's text encoder (through the lens), its contrastive training and its captions."""

import dataclasses

import keras
import keras_cv
import numpy as np
import pytest
import tensorflow as tf

from keras_sd_interp.data import compositions
from keras_sd_interp.models import bundled
from keras_sd_interp.models import tiny_clip as tc
from keras_sd_interp.training import tiny_clip as training

# Tiny sizes for speed (the text width stays the U-Net's context width, 64).
SMALL = tc.TinyCLIPConfig(embed_dim=16, vision_layers=1, vision_width=64, vision_patch_size=16,
                          transformer_layers=2, transformer_heads=4)
CAPTIONS = ["a sneaker and a bag", "a coat on the left and a bag on the right",
            "a bag on the right and a coat on the left", "a boot", ""]


@pytest.fixture(scope="module")
def clip():
    keras.utils.set_random_seed(0)
    return tc.build_tiny_clip(SMALL)


def _items(num=40, seed=0):
    """Items of class k are filled with 20 * k + 10 (so a pixel tells the class)."""
    labels = np.random.default_rng(seed).integers(0, 10, num)
    return (labels[:, None, None] * 20 + 10) * np.ones((num, 28, 28), np.uint8), labels


def test_tiny_clip_is_a_keras_cv_clip(clip):
    assert isinstance(clip, keras_cv.models.CLIP)
    assert clip.get_config()["transformer_width"] == 64
    token_ids, padding_mask = tc.clip_tokens(tc.clip_tokenizer(SMALL), CAPTIONS)
    images = tc.to_clip_images(np.zeros((len(CAPTIONS), 32, 64), np.uint8))
    assert images.shape == (5, 64, 64, 3) and images.min() == -1.0
    out = clip({"images": images, "token_ids": token_ids, "padding_mask": padding_mask})
    assert tuple(out["image_logits"].shape) == (5, 5)
    text = np.asarray(tc.text_embeddings(clip, token_ids, padding_mask))
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    # Causal: the pooled (end-token) embedding does not see the padding after it.
    unmasked = tc.text_embeddings(clip, token_ids, np.ones_like(padding_mask))
    np.testing.assert_allclose(text, unmasked, atol=1e-6)


def test_end_token_is_the_argmax_keras_cv_pools_at():
    tokenizer = tc.clip_tokenizer()
    ids = np.array(tokenizer(CAPTIONS))
    first_end = [row.index(tokenizer.end_token) for row in ids.tolist()]
    assert np.argmax(ids, axis=1).tolist() == first_end
    assert tokenizer.max_length == 13  # the longest caption, with start and end
    assert tokenizer.padding_mask(["a boot"])[0] == [1, 1, 1, 1] + [0] * 9


def test_text_tower_is_causal_unlike_keras_cvs(clip):
    from keras_cv.src.models.feature_extractor.clip.clip_text_model import CLIPTextEncoder

    ids = np.array(tc.clip_tokenizer(SMALL)(["a sneaker and a bag", "a sneaker and a boot"]))
    states = np.asarray(clip.text_encoder.hidden_states(ids))
    np.testing.assert_allclose(states[0, :5], states[1, :5], atol=1e-6)  # up to "a"
    assert np.abs(states[0, 5] - states[1, 5]).max() > 1e-3  # "bag" vs "boot"
    # keras-cv 0.9's own tower adds triu(ones) as its "causal" mask, so a token after the end
    # token (unmasked) changes the pooled embedding; in ours it cannot.
    stock = CLIPTextEncoder(64, 2, 4, SMALL.vocab_size, SMALL.embed_dim, 13)
    stock.build((None, 13))
    for name in ("token_embedding", "positional_embedding", "encoder", "ln_final",
                 "text_projector"):
        getattr(stock, name).set_weights(getattr(clip.text_encoder, name).get_weights())
    after_end = ids[:1].copy()
    after_end[0, 7] = ids[0, 2]  # "sneaker" after the end token
    both = np.concatenate([ids[:1], after_end])
    mask = np.ones_like(both)
    ours = np.asarray(clip.text_encoder(both, attention_mask=mask))
    np.testing.assert_allclose(ours[0], ours[1], atol=1e-6)
    theirs = np.asarray(stock(both, attention_mask=mask))
    assert np.abs(theirs[0] - theirs[1]).max() > 1e-3


def test_pipeline_text_encoder_is_the_clip_text_tower(clip, tmp_path):
    """The U-Net's context, through the tiny pipeline (a bundle holding the copied tower)
    and through the lens' sites, equals the CLIP text tower's hidden states."""
    from keras_sd_interp.lens.sites import hooks
    from keras_sd_interp.models.tiny import TinyPipeline

    rounded = tc.build_tiny_clip(SMALL)  # the bundle holds float16: compare at that rounding
    rounded.set_weights([w.astype(np.float16).astype(np.float32) for w in clip.get_weights()])
    encoder = tc.text_encoder_from_clip(rounded)
    tokenizer = tc.clip_tokenizer(SMALL)
    record = {"latent_scale": 1.0, "max_length": 13, "text_layers": 2, "text_heads": 4,
              "vocabulary": tokenizer.vocabulary, "text_encoder": "clip"}
    bundled.save_bundle({"text_encoder": encoder}, record, str(tmp_path))
    pipe = TinyPipeline(bundle_dir=str(tmp_path))
    with hooks(record="all") as cache:
        context = np.asarray(pipe.encode_prompts(CAPTIONS))
    expected = np.asarray(rounded.text_encoder.hidden_states(np.array(tokenizer(CAPTIONS))))
    np.testing.assert_allclose(context, expected, atol=1e-5)
    assert np.abs(expected[0] - expected[1]).max() > 1e-2  # not trivially equal
    assert tuple(cache["text.layer_1.attn.probs"].shape) == (5, 4, 13, 13)
    np.testing.assert_allclose(np.asarray(cache["text.final_norm"]), context, atol=1e-6)


def test_saved_clip_loads_back_as_written(clip, tmp_path):
    tc.save_tiny_clip(clip, {"captions": "spatial"}, str(tmp_path))
    loaded = tc.load_tiny_clip(str(tmp_path))
    assert tc.clip_config(loaded) == dataclasses.asdict(SMALL)
    for ours, theirs in zip(loaded.get_weights(), clip.get_weights()):
        np.testing.assert_array_equal(ours, theirs.astype(np.float16).astype(np.float32))
    with pytest.raises(FileNotFoundError, match="holds no tiny CLIP.*train_tiny_clip.py"):
        tc.load_tiny_clip(str(tmp_path / "none"))


@pytest.mark.parametrize("style", ["spatial", "layout_first"])
def test_spatial_captions_describe_the_image(style):
    items, labels = _items(200)
    images, captions, meanings = compositions.sample_batch(
        items, labels, np.random.default_rng(0), 400, captions=style, return_meanings=True)
    forms = dict.fromkeys(compositions.CAPTION_STYLES[style], 0)
    for image, caption, meaning in zip(images, captions, meanings):
        words = caption.split()
        if meaning >= 100:
            assert caption == compositions.single_caption(meaning - 100)
            continue
        left, right = divmod(meaning, 10)
        assert compositions.halves(image[None])[0][0, 0, 0] == 20 * left + 10
        assert compositions.halves(image[None])[1][0, 0, 0] == 20 * right + 10
        form = next(f for f, make in compositions.PAIR_FORMS.items() if make(left, right) == caption)
        forms[form] += 1
        if form == "and":  # "a X and a Y" still means X left
            assert words[1] == compositions.CLASS_NAMES[left]
        if style == "layout_first" and form != "and":  # the place comes before its item
            first, second = (left, right) if form == "left_first" else (right, left)
            assert words[:4] == ["on", "the", form.split("_")[0], "a"]
            assert words[4] == compositions.CLASS_NAMES[first]
            assert words[10] == compositions.CLASS_NAMES[second]
    shares = sorted(forms.values())
    assert forms["and"] == shares[-1] and shares[0] > 40, forms


def test_every_caption_fits_the_tiny_clip_context():
    tokenizer = tc.clip_tokenizer()
    for form in compositions.PAIR_FORMS:
        for caption in training.candidate_captions(form)[0]:
            words = caption.split()
            assert len(words) + 2 <= tokenizer.max_length, caption
            assert all(word in tokenizer.vocabulary for word in words), caption
    assert "half 'a X and a Y' (X left), a quarter 'on the left a X and on the right a Y'" in \
        training.data_description("layout_first")


def test_candidate_captions_are_the_110_distinct_captions_of_a_wording():
    for form in compositions.PAIR_FORMS:
        captions, meanings = training.candidate_captions(form)
        assert len(set(captions)) == 110 and sorted(meanings) == sorted(set(meanings))
    captions, meanings = training.candidate_captions("right_left")
    assert captions[7 * 10 + 8] == "a bag on the right and a sneaker on the left"
    assert meanings[78] == 78


def test_loss_falls_on_a_tiny_batch_and_retrieval_is_scored(tmp_path):
    items, labels = _items()
    trainer = training.TinyCLIPTrainer(str(tmp_path), items, labels, SMALL, batch_size=16,
                                       steps=150, learning_rate=1e-3, warmup_steps=0)
    batch = [tf.constant(x) for x in trainer.batch(0)]
    losses = [float(trainer._train_step(*batch)[0]) for _ in range(150)]
    # The floor: same-meaning captions share the target, so the loss cannot go below the
    # targets' entropy; the gap to it must at least halve.
    same = np.equal.outer(batch[3].numpy(), batch[3].numpy())
    floor = np.mean(np.log(same.sum(axis=1)))
    assert losses[-1] - floor < 0.5 * (losses[0] - floor), (floor, losses[::25])
    assert float(trainer.clip.clip_head.logit_scale) <= training.MAX_LOGIT_SCALE
    images, meanings = training.held_out_compositions(*_items(100, seed=1), 50)
    scores = training.retrieval_accuracy(trainer.clip, trainer.tokenizer, images, meanings)
    assert set(scores) == {"and", "left_right", "right_left", "and_pairs", "and_singles"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())


@pytest.mark.long  # 19 s
def test_resume_continues_the_same_run(tmp_path):
    items, labels = _items()
    kwargs = dict(config=SMALL, batch_size=8, steps=4, warmup_steps=1)
    whole = training.TinyCLIPTrainer(str(tmp_path / "whole"), items, labels, **kwargs)
    whole_losses, _ = whole.train()
    first = training.TinyCLIPTrainer(str(tmp_path / "parts"), items, labels, **kwargs)
    first.train(max_minutes=0)  # stops after one step
    assert int(first.step) == 1
    resumed = training.TinyCLIPTrainer(str(tmp_path / "parts"), items, labels, **kwargs)
    assert int(resumed.step) == 1
    losses, _ = resumed.train()
    assert int(resumed.step) == 4 and len(losses) == 3
    np.testing.assert_allclose(losses, whole_losses[1:], rtol=1e-4)
    for ours, theirs in zip(resumed.clip.get_weights(), whole.clip.get_weights()):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_a_changed_setting_refuses_naming_it(tmp_path):
    items, labels = _items()
    training.TinyCLIPTrainer(str(tmp_path), items, labels, SMALL, batch_size=8, steps=2)
    with pytest.raises(ValueError, match=r"--batch_size=4 differs from the run .* started with "
                                         r"--batch_size=8"):
        training.TinyCLIPTrainer(str(tmp_path), items, labels, SMALL, batch_size=4, steps=2)


@pytest.mark.slow
def test_unet_trains_under_the_frozen_clip_text_encoder(clip, tmp_path):
    """--text_encoder=clip: the U-Net trains, the text encoder stays the CLIP's, the bundle's
    record names the CLIP vocabulary and length, and the pipeline reads it back."""
    from keras_sd_interp.models.tiny import TinyPipeline
    from keras_sd_interp.training.tiny import TinyTrainer, train_tiny

    tc.save_tiny_clip(clip, {"captions": "spatial", "vocabulary": list(tc.CLIP_VOCABULARY),
                             "max_length": 13}, str(tmp_path / "clip"))
    items, labels = _items()
    trainer = TinyTrainer(str(tmp_path / "run"), items, labels, batch_size=2,
                          text_encoder="clip", clip_dir=str(tmp_path / "clip"),
                          autoencoder_bundle_dir=bundled.ASSETS_DIR)
    before = [w.copy() for w in trainer.text_encoder.get_weights()]
    record = train_tiny(trainer, 1200, 1, bundle_dir=str(tmp_path / "bundle"), command="test")
    assert int(trainer.ae_step) == 1200 and record["autoencoder_mse_last_batch"] is None
    for ours, theirs in zip(trainer.text_encoder.get_weights(), before):
        np.testing.assert_array_equal(ours, theirs)
    assert (record["text_encoder"], record["max_length"], record["captions"]) == (
        "clip", 13, "spatial")
    pipe = TinyPipeline(bundle_dir=str(tmp_path / "bundle"))
    ids = np.array(pipe.tokenizer(CAPTIONS))
    np.testing.assert_allclose(np.asarray(pipe.encode_prompts(CAPTIONS)),
                               np.asarray(tc.load_tiny_clip(str(tmp_path / "clip"))
                                          .text_encoder.hidden_states(ids)), atol=1e-5)
    with pytest.raises(ValueError, match="--text_encoder='joint' differs"):
        TinyTrainer(str(tmp_path / "run"), items, labels, batch_size=2)
