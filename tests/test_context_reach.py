"""`editing.evaluate.context_reach` on a real edit of the tiny model's text encoder, and a CLIP
tower carried into a bundle by `models.tiny_clip.pipeline_with_text_tower`."""

import numpy as np

from keras_sd_interp import editing, lens
from keras_sd_interp.editing.evaluate import context_reach
from keras_sd_interp.models.tiny_clip import pipeline_with_text_tower

PROMPTS = ["a sneaker and a bag", "a sneaker"]


def test_concept_edit_moves_its_own_token_and_every_position_edit_moves_the_rest(tmp_path):
    pipe = pipeline_with_text_tower("candidates/tiny_clip", "candidates/tiny_clip_unet", str(tmp_path))
    assert pipe.record["text_layers"] == 2
    before = np.asarray(pipe.encode_prompts(PROMPTS))
    concept = editing.diffquickfix(pipe, "sneaker", "coat", positions="concept")
    ratio, moved, apart = context_reach(pipe, concept, "sneaker", "coat", PROMPTS)
    last = lens.concept_span(pipe, PROMPTS[0], "sneaker").last
    assert np.isnan(ratio[0, :last]).all()                # the prompts agree before the word
    assert ratio[0, last] < 0.5                           # the edited token moves most of the way
    assert 0 < np.nanmean(ratio) < 1
    everywhere = editing.diffquickfix(pipe, "sneaker", "coat", positions="all")
    ratio_all = context_reach(pipe, everywhere, "sneaker", "coat", PROMPTS)[0]
    assert np.nansum(ratio_all[0, last + 1:]) < np.nansum(ratio[0, last + 1:])
    np.testing.assert_array_equal(np.asarray(pipe.encode_prompts(PROMPTS)), before)  # undone
