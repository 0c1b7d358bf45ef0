"""The bundled tiny model's parts: data, tokenizer, bundle files, pipeline and trainer."""

import numpy as np
import pytest

from keras_sd_interp.data import compositions
from keras_sd_interp.models import bundled
from keras_sd_interp.training.tiny_eval import balanced_pairs
from keras_sd_interp.models.tiny_text import WordTokenizer


def test_compositions_place_items_in_their_cells():
    rng = np.random.default_rng(0)
    items = rng.integers(1, 256, size=(3, 28, 28)).astype(np.uint8)
    pairs = compositions.compose_pairs(items, items[::-1])
    assert pairs.shape == (3, 32, 64)
    left, right = compositions.halves(pairs)
    np.testing.assert_array_equal(left, items)
    np.testing.assert_array_equal(right, items[::-1])
    assert pairs.sum() == 2 * items.sum(axis=(1, 2)).sum() - 0  # nothing outside the cells
    singles = compositions.compose_singles(items)
    np.testing.assert_array_equal(compositions.middle(singles), items)
    assert compositions.pair_caption(7, 8) == "a sneaker and a bag"
    assert compositions.single_caption(0) == "a t-shirt"


def test_sample_batch_captions_match_labels():
    rng = np.random.default_rng(1)
    items = np.arange(10)[:, None, None] * np.ones((10, 28, 28), np.uint8)
    labels = np.arange(10)
    images, captions = compositions.sample_batch(items, labels, rng, 200, single_share=0.3)
    singles = [i for i, c in enumerate(captions) if " and " not in c]
    assert 30 < len(singles) < 90
    for index, caption in enumerate(captions):
        words = caption.split()
        if index in singles:
            assert compositions.middle(images[index : index + 1])[0, 0, 0] == \
                compositions.CLASS_NAMES.index(words[1])
        else:
            left, right = compositions.halves(images[index : index + 1])
            assert left[0, 0, 0] == compositions.CLASS_NAMES.index(words[1])
            assert right[0, 0, 0] == compositions.CLASS_NAMES.index(words[4])


def test_word_tokenizer():
    tokenizer = WordTokenizer(max_length=8)
    ids = tokenizer.encode("a sneaker and a bag")
    assert [tokenizer.vocabulary[i] for i in ids] == [
        "<start>", "a", "sneaker", "and", "a", "bag", "<end>"]
    assert tokenizer.pad(ids) == ids + [tokenizer.end_token]
    assert tokenizer([""])[0] == [tokenizer.start_token] + [tokenizer.end_token] * 7
    with pytest.raises(ValueError, match=r"unknown words \['horse'\]"):
        tokenizer.encode("a horse")
    with pytest.raises(ValueError, match="takes at most 8"):
        tokenizer.pad(tokenizer.encode("a bag and a bag and a bag"))


def test_balanced_pairs_have_each_class_equally_often_on_each_side():
    left, right = balanced_pairs(20, seed=0)
    assert np.bincount(left).tolist() == [20] * 10
    assert np.bincount(right).tolist() == [20] * 10


def test_missing_bundle_is_a_clear_error(tmp_path, tiny_unet):
    with pytest.raises(FileNotFoundError, match="is not a tiny-model bundle .*weights.npz is "
                                                "missing.*written by scripts/train_tiny.py"):
        bundled.load_tiny_unet_weights(tiny_unet, bundle_dir=str(tmp_path))


@pytest.mark.long  # 31 s: builds two pipelines
def test_pipeline_with_a_bundle_written_and_read_back(tmp_path):
    import keras

    from keras_sd_interp.models.tiny import DEFAULT_RECORD, TinyPipeline

    keras.utils.set_random_seed(3)
    random_pipe = TinyPipeline(random_weights=True)
    models = {"unet": random_pipe.diffusion_model, "text_encoder": random_pipe.text_encoder,
              "vae_encoder": random_pipe.vae_encoder, "decoder": random_pipe.decoder}
    bundled.save_bundle(models, dict(DEFAULT_RECORD, latent_scale=0.5), str(tmp_path))
    pipe = TinyPipeline(bundle_dir=str(tmp_path))
    for ours, theirs in zip(pipe.diffusion_model.get_weights(), models["unet"].get_weights()):
        np.testing.assert_array_equal(ours, theirs.astype(np.float16).astype(np.float32))
    contexts = pipe.encode_prompts(["a bag", "a coat and a shirt"])
    assert tuple(contexts.shape) == (2, 8, 64)
    np.testing.assert_allclose(pipe._get_unconditional_context(), pipe.encode_prompts([""]))
    images = pipe.text_to_image("a sneaker and a bag", batch_size=2, num_steps=2, seed=0)
    assert images.shape == (2, 32, 64, 1) and images.dtype == np.uint8
    again = pipe.text_to_image("a sneaker and a bag", batch_size=2, num_steps=2, seed=0)
    np.testing.assert_array_equal(images, again)  # seeded
    latent = pipe.image_encoder(np.zeros((1, 32, 64, 1), np.float32))
    assert tuple(latent.shape) == (1, 8, 16, 4)


def _random_items(count=64):
    """Random uint8 (count, 28, 28) items and labels in 0..9: the trainer's input, no data."""
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, size=(count, 28, 28)).astype(np.uint8),
            rng.integers(0, 10, size=count))


def _check_resume_export_and_warm_start(trainer, tmp_path, ae_steps, diffusion_steps):
    """A trainer rebuilt on `trainer`'s folder resumes it (steps, scale, EMA weights); its bundle
    (export only) records the run; a new run warm-started from the bundle takes its weights
    (float16-rounded), step counts and scale."""
    from keras_sd_interp.training.tiny import TinyTrainer, train_tiny

    images, labels = _random_items()
    resumed = TinyTrainer(str(tmp_path / "run"), images, labels, batch_size=4)
    assert (int(resumed.ae_step), int(resumed.step)) == (ae_steps, diffusion_steps)
    assert float(resumed.latent_scale) == pytest.approx(float(trainer.latent_scale))
    np.testing.assert_array_equal(resumed.ema_vars[0].numpy(), trainer.ema_vars[0].numpy())
    train_tiny(resumed, 5, 5, export_only=True, bundle_dir=str(tmp_path / "bundle"),
               command="test")  # export only: no more steps
    record = bundled.read_record(str(tmp_path / "bundle"))
    assert record["diffusion_steps"] == diffusion_steps and record["command"] == "test"
    assert record["noise_mse_recent"] is None and "total" in record["minutes_this_run"]
    warm = TinyTrainer(str(tmp_path / "warm"), images, labels, batch_size=4,
                       init_bundle_dir=str(tmp_path / "bundle"))
    assert (int(warm.ae_step), int(warm.step)) == (ae_steps, diffusion_steps)
    assert float(warm.latent_scale) == pytest.approx(float(trainer.latent_scale))
    np.testing.assert_array_equal(
        warm.ema_vars[0].numpy(), trainer.ema_vars[0].numpy().astype(np.float16).astype(np.float32)
    )


def test_trainer_resumes_exports_and_warm_starts(tmp_path):
    """The autoencoder phase and the checkpoints, without a diffusion step (whose first call
    traces the U-Net's backward pass, about a minute: the slow test below runs it)."""
    from keras_sd_interp.training.tiny import TinyTrainer

    images, labels = _random_items()
    trainer = TinyTrainer(str(tmp_path / "run"), images, labels, batch_size=4)
    mse = trainer.train_autoencoder(2, checkpoint_every=1)
    assert np.isfinite(mse)
    assert trainer.fit_latent_scale(num_images=16) > 0
    _check_resume_export_and_warm_start(trainer, tmp_path, ae_steps=2, diffusion_steps=0)


@pytest.mark.long  # 100 s: the first diffusion step traces the U-Net's backward pass
def test_trainer_runs_both_phases_and_resumes(tmp_path):
    from keras_sd_interp.training.tiny import TinyTrainer

    images, labels = _random_items()
    trainer = TinyTrainer(str(tmp_path / "run"), images, labels, batch_size=4)
    assert np.isfinite(trainer.train_autoencoder(2, checkpoint_every=1))
    assert trainer.fit_latent_scale(num_images=16) > 0
    loss = trainer.train_diffusion(2, checkpoint_every=1)
    assert np.isfinite(loss)
    before = trainer.ema_vars[0].numpy()
    assert np.abs(before - trainer.diffusion_vars[0].numpy()).max() > 0  # EMA lags the weights
    _check_resume_export_and_warm_start(trainer, tmp_path, ae_steps=2, diffusion_steps=2)


@pytest.mark.fashion_mnist
def test_reference_accuracy_scores_real_test_compositions():
    from keras_sd_interp.data import load_fashion_mnist
    from keras_sd_interp.judge import load_judge
    from keras_sd_interp.models.tiny import TinyPipeline
    from keras_sd_interp.training.tiny_eval import reference_accuracy

    images, labels = load_fashion_mnist("test")
    scores = reference_accuracy(TinyPipeline(), load_judge(), images, labels, num_per_class=4)
    # 80 real cells: the judge is 91.6% right on the test set; the bundled autoencoder
    # (reconstruction MSE about 0.015) keeps most of that.
    assert scores["real"] >= 0.8
    assert 0.7 <= scores["autoencoded"] <= 1.0
