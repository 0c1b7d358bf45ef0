"""Scorers `score(images, texts) -> (n,)`: CLIP-Score through keras-cv's CLIP (tiny CLIP on
real compositions, a small random keras-cv CLIP on the SD path), the judge on captions."""

import json
import os

import numpy as np
import pytest

from keras_sd_interp.scoring import JudgeScorer, caption_items
from keras_sd_interp.scoring import clip as clip_scoring


@pytest.fixture(scope="module")
def compositions():
    """200 real test-split compositions (spatial captions) and the same images with the
    captions of other images (of another meaning)."""
    from keras_sd_interp.data import compositions as comp
    from keras_sd_interp.data import load_fashion_mnist

    items, labels = load_fashion_mnist("test")
    images, texts, meanings = comp.sample_batch(items, labels, np.random.default_rng(3), 200,
                                                captions="layout_first", return_meanings=True)
    other = [(i + 1 + np.flatnonzero(np.roll(meanings, -i - 1) != meanings[i])[0]) % 200
             for i in range(200)]
    return images[..., None], texts, [texts[j] for j in other]


@pytest.mark.fashion_mnist
def test_tiny_clip_scores_the_matching_caption_above_a_mismatched_one(compositions):
    images, texts, mismatched = compositions
    scorer = clip_scoring.tiny_clip_scorer()
    matching, other = scorer(images, texts), scorer(images, mismatched)
    assert matching.shape == (200,) and np.all(np.abs(matching) <= 1 + 1e-5)
    assert np.mean(matching > other) > 0.85, np.mean(matching > other)
    assert matching.mean() - other.mean() > 0.1
    # batching does not change a score; one text for all images broadcasts
    np.testing.assert_allclose(scorer(images[:3], texts[:3]),
                               [scorer(images[i:i + 1], texts[i])[0] for i in range(3)],
                               atol=1e-5)


@pytest.mark.fashion_mnist
def test_judge_scores_captions_by_their_items(compositions):
    from keras_sd_interp.judge import load_judge

    images, texts, mismatched = compositions
    judge = JudgeScorer(load_judge())
    matching, other = judge(images, texts), judge(images, mismatched)
    assert matching.mean() > 0.8 and other.mean() < 0.5
    assert caption_items("a bag on the right and a dress on the left") == [(8, "right"),
                                                                             (3, "left")]
    assert caption_items("a sneaker and a bag") == [(7, "left"), (8, "right")]
    assert caption_items("a coat") == [(4, "middle")]


def test_layout_first_captions_and_their_subjects():
    from keras_sd_interp.scoring.judge import subject_spec

    assert caption_items("on the right a shirt and on the left a bag") == [(6, "right"),
                                                                            (8, "left")]
    assert caption_items("on the left a t-shirt and on the right a boot") == [(0, "left"),
                                                                              (9, "right")]
    prompt = "on the right a shirt and on the left a bag"
    assert subject_spec(None, prompt, "shirt") == {"tokens": [5], "class": 6, "cell": "right"}
    assert subject_spec(None, prompt, "bag") == {"tokens": [11], "class": 8, "cell": "left"}
    assert subject_spec(None, "a sneaker and a bag", "bag")["cell"] == "right"
    assert subject_spec(None, "a bag", "bag")["cell"] == "middle"


def test_judge_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="cannot read 'a cat'.*sneaker"):
        caption_items("a cat")
    with pytest.raises(ValueError, match="name both sides"):
        caption_items("a bag on the left and a coat")
    with pytest.raises(ValueError, match="3 texts for 2 images"):
        JudgeScorer(None)(np.zeros((2, 32, 64, 1), np.uint8), ["a bag"] * 3)


class FakeBPE:
    """Stands in for keras-cv's SimpleTokenizer where only the shapes matter: start, one id per
    word, end."""

    def encode(self, text):
        return [49406] + [320 + len(word) for word in text.split()] + [49407]


def test_random_keras_cv_clip_runs_the_sd14_path():
    """keras-cv's own CLIP (small, random weights) scores 64x64 RGB images through the same
    ClipScorer: cosines in [-1, 1], one per image, independent of the batch."""
    import keras

    keras.utils.set_random_seed(0)
    scorer = clip_scoring.sd14_clip_scorer(FakeBPE(), random_weights=True, batch_size=2)
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3)).astype(np.uint8)
    scores = scorer(images, ["a photo of a bottle", "a cat", "a photo of a bottle"])
    assert scores.shape == (3,) and np.all(np.abs(scores) <= 1 + 1e-5)
    np.testing.assert_allclose(scores[[0, 2]], scorer(images[[0, 2]], "a photo of a bottle"),
                               atol=1e-5)
    assert len(set(np.round(scores, 5))) == 3


def test_load_clip_reads_a_local_preset_folder_and_names_what_is_missing(tmp_path):
    """A keras-cv CLIP saved as a preset folder (config.json + model.weights.h5) loads back with
    the same weights; a folder without them, or offline, is an error naming the file."""
    import keras

    from keras_sd_interp.models import clip as clip_models

    keras.utils.set_random_seed(1)
    clip = clip_models.build_clip()
    folder = tmp_path / "clip-small"
    os.makedirs(folder)
    clip.save_weights(str(folder / "model.weights.h5"))
    with open(folder / "config.json", "w") as f:
        json.dump({"class_name": "CLIP", "config": clip.get_config(),
                   "weights": "model.weights.h5"}, f)
    loaded = clip_models.load_clip(clip_dir=str(folder))
    for a, b in zip(clip.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(FileNotFoundError, match="config.json is missing from --clip_dir"):
        clip_models.load_clip(clip_dir=str(tmp_path))
    with pytest.raises(ValueError, match="unknown CLIP preset 'clip-tiny'.*clip-vit-base-patch32"):
        clip_models.load_clip("clip-tiny")
