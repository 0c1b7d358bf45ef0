"""Causal tracing: exact restorations, batched == one at a time, names, scores, bad input."""

import numpy as np
import pytest

from keras_sd_interp.attribution import causal_trace as ct
from keras_sd_interp.lens import components as parts
from keras_sd_interp.models import load_pipeline
from keras_sd_interp.judge import load_judge
from keras_sd_interp.scoring import JudgeScorer, subject_spec, tiny_clip_scorer

PROMPT, SUBJECT = "a sneaker and a bag", "sneaker"
STEPS = 3


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline("tiny")


@pytest.fixture(scope="module")
def runs(pipe):
    """Clean trace and images, the corruption, the initial latent."""
    components = parts.unet_components(pipe)
    noise = pipe.sampler.initial_noise(1, 0).numpy()
    clean, clean_image = ct.clean_run(pipe, PROMPT, noise, components, STEPS, 5.0)
    corruption = ct.Corruption()
    corruption.set((1, pipe.max_length, 64), subject_spec(pipe, PROMPT, SUBJECT)["tokens"], 0.5, seed=0)
    return dict(components=components, noise=noise, clean=clean, clean_image=clean_image,
                corruption=corruption)


def restore(pipe, runs, restore_lists):
    return ct.restored_images(pipe, PROMPT, runs["noise"], runs["clean"], runs["corruption"],
                              restore_lists, STEPS, 5.0)


def test_components_and_their_diffusers_names(pipe):
    components = parts.unet_components(pipe)
    assert len(components) == 22 + 16 * 3
    assert components[:4] == ["res_block_0", "spatial_transformer_0.attn1",
                              "spatial_transformer_0.attn2", "spatial_transformer_0.ff"]
    assert parts.diffusers_name("spatial_transformer_7.attn2") == \
        "up_blocks.1.attentions.0.transformer_blocks.0.attn2"
    assert parts.diffusers_name("spatial_transformer_6.ff") == \
        "mid_block.attentions.0.transformer_blocks.0.ff"
    assert parts.diffusers_name("res_block_8") == "mid_block.resnets.0"
    assert parts.diffusers_name("res_block_21") == "up_blocks.3.resnets.2"
    assert parts.diffusers_name("res_block_3") == "down_blocks.1.resnets.1"
    blocks = [parts.unet_block(c) for c in components]
    assert blocks.count("mid") == 2 + 3 and blocks[0] == "down" and blocks[-1] == "up"
    assert parts.text_components(pipe, [2])[:2] == ["text.layer_0.attn.out@2",
                                                 "text.layer_0.mlp.out@2"]
    assert parts.split_component("text.layer_1.mlp.out@3") == ("text.layer_1.mlp.out", 3)


def test_subject_spec_finds_tokens_and_cells(pipe):
    assert subject_spec(pipe, PROMPT, "sneaker") == {"tokens": [2], "class": 7, "cell": "left"}
    assert subject_spec(pipe, PROMPT, "bag")["cell"] == "right"
    assert subject_spec(pipe, "a bag", "bag") == {"tokens": [2], "class": 8, "cell": "middle"}


def test_restoring_none_is_the_corrupted_run_and_all_is_the_clean_run(pipe, runs):
    from keras_sd_interp import lens

    with lens.trace(pipe, edits={"text.embed": runs["corruption"]}, half="cond"):
        corrupted = pipe.sampler.generate(PROMPT, num_steps=STEPS, diffusion_noise=runs["noise"],
                                          unconditional_guidance_scale=5.0).uint8()
    assert np.abs(corrupted.astype(int) - runs["clean_image"]).max() > 0  # the noise matters
    none, every = restore(pipe, runs, [[]]), restore(pipe, runs, [runs["components"]])
    np.testing.assert_array_equal(none, corrupted)
    np.testing.assert_array_equal(every, runs["clean_image"])
    for scorer in (tiny_clip_scorer(), JudgeScorer(load_judge())):  # so the scores are too
        assert scorer(every, PROMPT)[0] == scorer(runs["clean_image"], PROMPT)[0]
        assert scorer(none, PROMPT)[0] == scorer(corrupted, PROMPT)[0]
        assert scorer(every, PROMPT)[0] != scorer(none, PROMPT)[0]


def assert_close_images(a, b):
    """Equal up to the rounding of a different batch size (a few uint8 levels, rarely)."""
    difference = np.abs(a.astype(int) - b.astype(int))
    assert difference.max() <= 8 and difference.mean() < 0.05, (difference.max(),
                                                                 difference.mean())


def test_batched_restorations_equal_one_generation_each(pipe, runs):
    attn2 = [c for c in runs["components"] if c.endswith("attn2")]
    batched = restore(pipe, runs, [[], attn2, ["res_block_5"]])
    assert_close_images(batched[0], restore(pipe, runs, [[]])[0])
    assert_close_images(batched[1], runs["clean_image"][0])  # the context enters via attn2 only
    assert_close_images(batched[2], restore(pipe, runs, [["res_block_5"]])[0])


@pytest.mark.long  # 28 s; tests/test_sd14_mini.py runs the CLIP-scored path fast
def test_causal_trace_scores_are_restored_minus_corrupted_by_each_scorer(pipe):
    components = ["spatial_transformer_3.attn2", "text.layer_0.attn.out@2", "res_block_0"]
    scorers = {"judge": JudgeScorer(load_judge()), "clip": tiny_clip_scorer()}
    result = ct.causal_trace(pipe, scorers, [(PROMPT, SUBJECT)], components, seeds=[0, 1],
                             num_steps=2, chunk_size=2, progress=False)
    assert result["restored"].shape == (1, 2, 3) and result["clean"].shape == (1, 2)
    assert result["subject_tokens"] == [[2]]
    for name, part in result["by_scorer"].items():
        np.testing.assert_allclose(
            part["effect"], (part["restored"] - part["corrupted"][..., None]).mean((0, 1)))
    np.testing.assert_array_equal(result["effect"], result["by_scorer"]["judge"]["effect"])
    judge, clip = result["by_scorer"]["judge"], result["by_scorer"]["clip"]
    assert np.all((judge["restored"] >= 0) & (judge["restored"] <= 1))
    assert np.all(np.abs(clip["restored"]) <= 1) and not np.allclose(clip["restored"],
                                                                     judge["restored"])
    assert result["embedding_std"] > 0


def test_rank_stability():
    rho, _ = ct.rank_stability([0.1, 0.5, 0.2, 0.9], [0.0, 0.4, 0.3, 1.0])
    assert rho == pytest.approx(1.0)
    rho, _ = ct.rank_stability([1, 2, 3], [3, 2, 1])
    assert rho == pytest.approx(-1.0)


def test_bad_input_names_what_is_valid(pipe):
    with pytest.raises(ValueError, match="unknown subject 'cat'"):
        subject_spec(pipe, PROMPT, "cat")
    with pytest.raises(ValueError, match="not a word of prompt"):
        subject_spec(pipe, PROMPT, "boot")
    with pytest.raises(ValueError, match="noise_scale=0"):
        ct.causal_trace(pipe, lambda images, spec: np.zeros(len(images)), [(PROMPT, SUBJECT)],
                        ["res_block_0"], noise_scale=0)
    with pytest.raises(ValueError, match="unknown U-Net component kinds"):
        parts.unet_components(pipe, kinds=("conv",))
    with pytest.raises(ValueError, match=r"'a boot' is not in the prompt.*'sneaker'"):
        ct.subject_tokens(pipe, [(PROMPT, "a boot")])
    with pytest.raises(ValueError, match=r"different token positions \('sneaker' at tokens \[2\]"):
        ct.subject_tokens(pipe, [(PROMPT, "sneaker"), ("a bag and a coat", "coat")], True)
    with pytest.raises(ValueError, match=r"'\*\.attn3' matches none of the 70 components"):
        ct.select_components(parts.unet_components(pipe), ["*.attn3"])
    assert ct.select_components(parts.unet_components(pipe), ["*_3.attn2"]) == [
        "spatial_transformer_3.attn2"]


def test_script_stops_on_a_word_outside_the_vocabulary_before_any_model(monkeypatch):
    """--scorer=clip on tiny passes the flag checks with 'a cat and a bag'; the tokenizer then
    refuses 'cat', naming the vocabulary, before the U-Net is built."""
    import importlib.util
    import pathlib

    from absl import flags

    from keras_sd_interp.lens import components

    monkeypatch.setattr(components, "unet_components",
                        lambda pipe: pytest.fail("the U-Net was reached"))
    path = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "causal_trace.py"
    before = set(flags.FLAGS)
    spec = importlib.util.spec_from_file_location("script_causal_trace", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        flags.FLAGS(["causal_trace", "--scorer=clip", "--prompt=a cat and a bag",
                     "--subject=cat", "--parts=unet"])
        with pytest.raises(ValueError, match=r"unknown words \['cat'\].*the tiny model knows"):
            module.main([])
    finally:
        flags.FLAGS.unparse_flags()
        for name in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, name)
