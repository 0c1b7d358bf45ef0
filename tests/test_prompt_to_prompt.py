"""Prompt-to-prompt on the lens: the controllers' exact limits, refine's alignment, local
blend's two extreme masks, bad input before any model, and SD v1.4 on random weights."""

import numpy as np
import pytest

from keras_sd_interp.lens.tokens import Tokens
from keras_sd_interp.editing import prompt_to_prompt as p2p
from keras_sd_interp.editing.prompt_to_prompt import seq_aligner, steps
from keras_sd_interp.models import load_pipeline

SOURCE = "a trouser and a boot"
EDITS = ["a trouser and a bag", "a trouser and a sneaker"]
STEPS = 4
SEED = 11
GUIDANCE = 5.0


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline("tiny")


def plain(pipe, prompts, seed=SEED, num_steps=STEPS):
    """Plain generation of `prompts` in one batch, every prompt from the same noise."""
    noise = np.tile(pipe.sampler.initial_noise(1, seed), [len(prompts), 1, 1, 1])
    return pipe.sampler.generate(prompts, num_steps=num_steps, diffusion_noise=noise,
                                 unconditional_guidance_scale=GUIDANCE).images


@pytest.mark.long  # 24 s
def test_no_injection_equals_plain_generation_bit_for_bit(pipe):
    """cross_replace_steps = self_replace_steps = 0: the edited images are those of plain
    generation of the same prompts (one batch: another batch size changes the kernels'
    blocking, about 3e-5 of float noise)."""
    result = p2p.PromptToPrompt(pipe, SOURCE, EDITS, p2p.Replace(0.0, 0.0),
                                num_steps=STEPS).generate(seed=SEED, guidance=GUIDANCE)
    reference = plain(pipe, [SOURCE] + EDITS)
    np.testing.assert_array_equal(result.images[:, 0], reference)
    assert np.abs(result.edits[0] - result.source).mean() > 0.02  # the prompts differ


@pytest.mark.slow
def test_refine_without_injection_equals_plain_generation(pipe):
    edits = ["a black trouser and a boot"]
    result = p2p.PromptToPrompt(pipe, SOURCE, edits, p2p.Refine(0.0, 0.0),
                                num_steps=STEPS).generate(seed=SEED, guidance=GUIDANCE)
    np.testing.assert_array_equal(result.images[:, 0], plain(pipe, [SOURCE] + edits))


def test_replace_everywhere_with_the_same_prompt_equals_the_source(pipe):
    """Replace at every step (cross and self) with an identical prompt gives the source; so
    does a reweight of 1 over it (both controllers' paths, one run, two images per prompt)."""
    controller = p2p.Reweight(1.0, 1.0, words=["boot"], values=[1.0], base=p2p.Replace())
    result = p2p.PromptToPrompt(pipe, SOURCE, [SOURCE], controller, num_steps=STEPS,
                                images_per_prompt=2).generate(seed=SEED, guidance=GUIDANCE)
    assert result.images.shape == (2, 2, 32, 64, 1)
    # Equal up to float32 round-off: the edit is another row of the same batched matmuls.
    np.testing.assert_allclose(result.edits[0], result.source, atol=1e-4)
    assert np.abs(result.source[0] - result.source[1]).mean() > 0.02  # two different seeds


def test_local_blend_with_an_empty_mask_equals_the_source(pipe):
    """Outside the mask the latent is the source's: an empty mask (threshold above the
    normalised maximum 1) gives the source."""
    blend = p2p.LocalBlend([["boot"], ["bag"]], threshold=1.5, start_blend=0.5)
    result = p2p.PromptToPrompt(pipe, SOURCE, EDITS[:1], p2p.Replace(0.8, 0.4),
                                local_blend=blend, num_steps=STEPS).generate(
        seed=SEED, guidance=GUIDANCE)
    np.testing.assert_array_equal(result.edits[0], result.source)


def test_blend_mask_minmax_finds_the_half_that_max_does_not():
    """A map that never falls below 0.33 of its peak (tiny's): divided by its maximum every
    cell passes 0.3; scaled to 0..1 only the right half does (plus the 3x3 pool's column)."""
    from keras_sd_interp.editing.prompt_to_prompt.local_blend import blend_mask

    maps = np.full((2, 4, 8, 3), 0.33, np.float32)        # (P * n, h, w, L); source, edit
    maps[:, :, 4:, 1] = 1.0                               # token 1 on the right half
    weights = np.array([[0, 1, 0], [0, 1, 0]], np.float32)
    full = blend_mask(maps, weights, (4, 8), 0.3, 2, "max").numpy()[..., 0]
    half = blend_mask(maps, weights, (4, 8), 0.3, 2, "minmax").numpy()[..., 0]
    assert full.all()
    np.testing.assert_array_equal(half[:, :, :3], False)
    np.testing.assert_array_equal(half[:, :, 3:], True)


@pytest.mark.slow
def test_local_blend_extreme_masks(pipe):
    """A full mask (threshold below 0) gives the edit without blend; the usual one keeps the
    trouser's side."""
    def run(blend):
        return p2p.PromptToPrompt(pipe, SOURCE, EDITS[:1], p2p.Replace(0.8, 0.4),
                                  local_blend=blend, num_steps=STEPS).generate(
            seed=SEED, guidance=GUIDANCE)

    words = [["boot"], ["bag"]]
    full = run(p2p.LocalBlend(words, threshold=-1.0))
    np.testing.assert_array_equal(full.images, run(None).images)
    usual = run(p2p.LocalBlend(words))
    left = np.abs(usual.latents[1, 0, :, :6] - usual.latents[0, 0, :, :6]).mean()
    right = np.abs(usual.latents[1, 0, :, 10:] - usual.latents[0, 0, :, 10:]).mean()
    assert left < 0.2 * right  # the boot (right) changes, the trouser's side much less


@pytest.mark.slow
def test_reweight_scales_the_chosen_word(pipe):
    """Reweight of the source's own maps: weight 1 everywhere equals the source; 0 and 4
    move the image, 4 further than 2 (the item's attention mass grows)."""
    editor = p2p.PromptToPrompt(pipe, SOURCE, [SOURCE] * 3,
                                p2p.Reweight(1.0, 0.0, words=["boot"], values=[1.0, 0.0, 4.0]),
                                num_steps=STEPS)
    result = editor.generate(seed=SEED, guidance=GUIDANCE)
    np.testing.assert_array_equal(result.edits[0], result.source)
    assert np.abs(result.edits[1] - result.source).mean() > 0.01
    assert np.abs(result.edits[2] - result.source).mean() > 0.01


def test_refine_alignment_on_hand_made_token_lists():
    # start 0, end 1: "a boot" -> "a black boot": the inserted token has no source (-1).
    assert seq_aligner.target_to_source([0, 5, 9, 1], [0, 5, 7, 9, 1]).tolist() == \
        [0, 1, -1, 2, 3]
    # a removed token: the target skips it.
    assert seq_aligner.target_to_source([0, 5, 7, 9, 1], [0, 5, 9, 1]).tolist() == [0, 1, 3, 4]
    # a changed token aligns with a gap on each side (gap 0 beats a mismatch of -1).
    assert seq_aligner.target_to_source([0, 5, 1], [0, 6, 1]).tolist() == [0, -1, 2]
    index, alphas = seq_aligner.refinement_mapper([0, 5, 9, 1], [0, 5, 7, 9, 1], 8)
    assert index.tolist() == [0, 1, -1, 2, 3, 5, 6, 7]
    assert alphas.tolist() == [1, 1, 0, 1, 1, 1, 1, 1]


def test_replacement_mapper_shares_a_split_word():
    # "a cat sat" -> "a hedge hog sat": cat (position 2) feeds both target tokens with 1/2.
    mapper = seq_aligner.replacement_mapper_from_spans([[1], [2], [3]], [[1], [2, 3], [4]], 8)
    assert mapper[2, 2] == mapper[2, 3] == 0.5
    assert mapper[1, 1] == mapper[3, 4] == mapper[4, 5] == mapper[0, 0] == 1.0
    assert mapper.sum(axis=0)[:6].tolist() == [1, 1, 0.5, 0.5, 1, 1]


def test_cross_replace_steps_forms(pipe):
    tokens = Tokens(pipe)
    table = steps.cross_alpha(tokens, EDITS[:1], 0.5, 9)   # theirs: int(0.5 * 10) = 5 rows
    assert table.shape == (9, 1, pipe.max_length) and table[:, 0, 0].tolist() == [1] * 5 + [0] * 4
    table = steps.cross_alpha(tokens, EDITS[:1], {"default_": (0.2, 1.0), "bag": 0.3}, 9)
    assert table[:, 0, 5].tolist() == [1] * 3 + [0] * 6          # "bag" is token 5
    assert table[:, 0, 2].tolist() == [0] * 2 + [1] * 7
    assert steps.self_window((0.2, 0.6), 10) == (2, 6)


@pytest.mark.parametrize("call, message", [
    (lambda: p2p.check_request(SOURCE, ["a trouser and bag"], p2p.Replace()),
     "same number of words"),
    (lambda: p2p.check_request(SOURCE, EDITS, p2p.Replace(1.5)), r"0 <= start <= end <= 1"),
    (lambda: p2p.check_request(SOURCE, EDITS, p2p.Replace(0.5, (0.6, 0.2))),
     "self_replace_steps"),
    (lambda: p2p.check_request(SOURCE, EDITS, p2p.Replace({"dog": 0.5})),
     "word 'dog' is in none of the edited prompts"),
    (lambda: p2p.check_request(SOURCE, [SOURCE], p2p.Reweight(words=["dog"], values=[2])),
     "word 'dog' is not in the prompt"),
    (lambda: p2p.check_request(SOURCE, [SOURCE], p2p.Reweight(words=["boot"], values=[2, 3])),
     "2 values for 1 edited prompts"),
    (lambda: p2p.check_request(SOURCE, EDITS[:1], p2p.Reweight(words=["trouser"], values=[2])),
     "must equal the source"),
    (lambda: p2p.check_request(SOURCE, EDITS[:1], p2p.Replace(),
                               p2p.LocalBlend([["boot"], ["dog"]])),
     "word 'dog' is not in the prompt 'a trouser and a bag'"),
    (lambda: p2p.check_request(SOURCE, EDITS[:1], p2p.Replace(), p2p.LocalBlend([["boot"]])),
     "1 entries of words for 2 prompts"),
    (lambda: p2p.check_request(SOURCE, [], p2p.Replace()), "one or more"),
    (lambda: p2p.check_request(SOURCE, EDITS[:1], p2p.Replace(),
                               p2p.LocalBlend([["boot"], ["bag"]], normalize="mean")),
     "normalize='mean': choose one of"),
])
def test_bad_input_is_named_before_any_model(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.slow
def test_sd14_random_weights_runs_the_controllers():
    """SD v1.4 (random weights, 64x64: latent 8x8, 77 tokens, BPE ids given directly): replace
    with self-attention at the 2x2 and 1x1 layers, and a blend at 4x4 and 2x2."""
    import keras

    keras.utils.set_random_seed(2)
    pipe = load_pipeline("sd14", img_height=64, img_width=64, random_weights=True)
    vocab = {"a": 320, "cat": 2368, "dog": 1929, "hedge": 20379, "hog": 22014, "sat": 3290}

    def tokens(prompts):
        rows = [[49406] + [vocab[w] for w in p.split()] for p in prompts]
        return np.array([r + [49407] * (77 - len(r)) for r in rows], np.int32)

    pipe.tokens = tokens
    editor = p2p.PromptToPrompt(pipe, "a cat sat", ["a dog sat", "a cat sat"],
                                p2p.Replace(1.0, 1.0),
                                local_blend=p2p.LocalBlend([["cat"], ["dog"], ["cat"]]),
                                num_steps=3)
    result = editor.generate(seed=0, guidance=7.5)
    assert result.images.shape == (3, 1, 64, 64, 3)
    # not bit for bit here: the full-size kernels block batch rows by position (3e-5 measured)
    np.testing.assert_allclose(result.edits[1], result.source, atol=1e-4)
    assert editor.blend.grid == (4, 4)
    assert len([n for n in editor.lens_edits if n.endswith("attn1.probs")]) == 1 + 1 + 2


def test_script_flags_become_one_checked_request():
    from types import SimpleNamespace

    from keras_sd_interp.cli import prompt_to_prompt as request_flags

    assert request_flags.parse_bounds("0.2:0.9", "x") == (0.2, 0.9)
    assert request_flags.parse_bounds("default_=0.8,bag=0.2:0.5", "x") == \
        {"default_": 0.8, "bag": (0.2, 0.5)}
    values = dict(source=SOURCE, edits=EDITS, controller="replace", cross_replace_steps="0.8",
                  self_replace_steps="0:0.4", reweight_words=[], reweight_values=[],
                  reweight_base="none", blend_words="boot;bag;sneaker", threshold=0.3,
                  start_blend=0.2, num_steps=25)
    source, edits, controller, blend = request_flags.request(SimpleNamespace(**values))
    assert controller == p2p.Replace(0.8, (0.0, 0.4)) and blend.words[2] == ["sneaker"]
    with pytest.raises(ValueError, match="start:end pair"):
        request_flags.request(SimpleNamespace(**dict(values, cross_replace_steps="most")))
    with pytest.raises(ValueError, match="one non-empty list of token positions"):
        p2p.check_request(SOURCE, EDITS[:1], p2p.Replace(), p2p.LocalBlend(positions=[[7]]))


def test_for_prompts_shares_the_editor_only_for_the_same_structure(pipe):
    editor = p2p.PromptToPrompt(pipe, SOURCE, EDITS[:1], p2p.Replace(0.8, 0.4), num_steps=STEPS)
    other = editor.for_prompts("a dress and a coat", ["a dress and a bag"])
    assert other.prompts == ["a dress and a coat", "a dress and a bag"]
    assert other.lens_edits is editor.lens_edits and editor.prompts[0] == SOURCE
    by_word = p2p.PromptToPrompt(pipe, SOURCE, EDITS[:1], p2p.Replace({"bag": 0.3}),
                                 num_steps=STEPS)
    with pytest.raises(ValueError, match="do not share the token maps"):
        by_word.for_prompts("a dress and a coat", ["a bag and a dress"])  # "bag" moved
