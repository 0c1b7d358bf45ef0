"""Closed-form edits: normal equations, the papers' forms, reversibility, files, bad input."""

import numpy as np
import pytest
from absl import app

from keras_sd_interp import editing, lens
from keras_sd_interp.editing import methods
from keras_sd_interp.models import load_pipeline

STEPS = 2


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline("tiny")


def random_problem(seed=0, n=9, d_in=64, d_out=32, m=5):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(d_in, d_out)), rng.normal(size=(n, d_in)),
            rng.normal(size=(n, d_out)), rng.normal(size=(m, d_in)))


@pytest.mark.parametrize("with_keep", [False, True])
@pytest.mark.parametrize("lam", [0.01, 1.0])
def test_update_solves_its_normal_equations(with_keep, lam):
    kernel, keys, targets, keep = random_problem()
    keep = keep if with_keep else None
    new = editing.ridge_update(kernel, keys, targets, lam, keep)
    gradient = editing.objective_gradient(new, kernel, keys, targets, lam, keep)
    scale = np.abs(editing.objective_gradient(kernel, kernel, keys, targets, lam, keep)).max()
    assert np.abs(gradient).max() / scale < 1e-5
    assert not np.allclose(new, kernel)


def test_very_large_lambda_leaves_the_kernel_unchanged():
    kernel, keys, targets, _ = random_problem(1)
    new = editing.ridge_update(kernel, keys, targets, lam=1e12)
    np.testing.assert_allclose(new, kernel, rtol=0, atol=1e-9)


def test_update_equals_the_papers_forms_in_pytorch_layout():
    kernel, keys, targets, _ = random_problem(2, d_out=64)
    lam, weight = 0.01, kernel.T  # PyTorch's W (out, in)
    # DiffQuickFix: W' = (lam W + sum v k^T)(lam I + sum k k^T)^-1
    dqf = (lam * weight + targets.T @ keys) @ np.linalg.inv(lam * np.eye(64) + keys.T @ keys)
    np.testing.assert_allclose(editing.ridge_update(kernel, keys, targets, lam), dqf.T,
                               rtol=1e-6, atol=1e-8)
    # LocoEdit: W' = [(K^T K + lam I)^-1 (K^T V W^T + lam W^T)]^T, V = target embeddings
    values = np.random.default_rng(3).normal(size=keys.shape)
    loco = (np.linalg.inv(keys.T @ keys + lam * np.eye(64))
            @ (keys.T @ values @ weight.T + lam * weight.T)).T
    np.testing.assert_allclose(editing.ridge_update(kernel, keys, values @ kernel, lam), loco.T,
                               rtol=1e-6, atol=1e-8)


def test_sd_sized_update_runs(benchmark=None):
    kernel, keys, targets, _ = random_problem(4, n=20, d_in=768, d_out=320)
    assert editing.ridge_update(kernel, keys, targets).shape == (768, 320)


def test_bad_lambda_and_shapes_are_errors(pipe):
    kernel, keys, targets, _ = random_problem()
    for lam in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="positive finite"):
            editing.ridge_update(kernel, keys, targets, lam)
    with pytest.raises(ValueError, match=r"keys \(9, 64\) must be \(n, 32\)"):
        editing.ridge_update(kernel.T, keys, targets)
    with pytest.raises(ValueError, match="positive finite"):
        editing.diffquickfix(pipe, "sneaker", "bag", lam=0)
    with pytest.raises(ValueError, match="unknown concept word 'cat'"):
        editing.diffquickfix(pipe, "cat", "bag")
    with pytest.raises(ValueError, match="unknown target word 'dog'"):
        editing.locoedit(pipe, [("sneaker", "dog")], layers=[3])
    with pytest.raises(ValueError, match=r"window=17: use 1..16"):
        editing.locogen(pipe, None, "sneaker", "bag", window=17)
    with pytest.raises(ValueError, match="give a non-empty list from 0..15"):
        editing.locoedit(pipe, [("sneaker", "bag")], layers=[16])
    with pytest.raises(ValueError, match="unknown editable layer"):
        lens.dense_kernel(pipe, "res_block_3.conv1")


def test_an_edit_that_would_do_nothing_is_an_error(pipe):
    with pytest.raises(ValueError, match="both 'sneaker': the edit would do nothing"):
        editing.diffquickfix(pipe, "sneaker", "sneaker")
    with pytest.raises(ValueError, match=r"keep=\['sneaker'\] holds \['sneaker'\]"):
        editing.diffquickfix(pipe, "sneaker", "bag", keep=["sneaker"])
    with pytest.raises(ValueError, match=r"holds \['bag'\], the edit's own"):
        editing.locoedit(pipe, [("sneaker", "bag")], layers=[4], keep=["coat", "bag"])
    with pytest.raises(ValueError, match="both 'coat'"):
        editing.locoedit(pipe, [("sneaker", "bag"), ("coat", "coat")], layers=[4])


def test_edit_files_are_written_where_asked_and_bad_files_name_their_path(pipe, tmp_path):
    edit = editing.Edit({"text.layer_0.attn.out_proj": np.eye(4, dtype=np.float32)},
                        {"method": "test"})
    path = str(tmp_path / "no_extension")
    assert edit.save(path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no_extension"]  # no ".npz" added
    np.testing.assert_array_equal(editing.load_edit(path).kernels["text.layer_0.attn.out_proj"],
                                  np.eye(4))
    with pytest.raises(FileNotFoundError, match="missing.npz' does not exist; expected an .npz"):
        editing.load_edit(str(tmp_path / "missing.npz"))
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="text.npz' is not an edit file"):
        editing.load_edit(str(tmp_path / "text.npz"))
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="other.npz' is not an edit file .KeyError"):
        editing.load_edit(str(tmp_path / "other.npz"))


def test_diffquickfix_maps_concept_keys_to_target_values(pipe):
    edit = editing.diffquickfix(pipe, "sneaker", "bag", lam=1e-6)
    prompts, where = editing.concept_prompts("sneaker", exclude=("bag",))
    swapped = [methods._swap(p, t, "bag") for p, t in zip(prompts, where)]
    site = "text.layer_0.attn.out"
    wanted = methods.text_records(pipe, swapped, [site])[site]
    edit.apply(pipe)
    try:
        got = methods.text_records(pipe, prompts, [site])[site]
    finally:
        edit.undo(pipe)
    rows = np.arange(len(prompts))
    np.testing.assert_allclose(got[rows, where], wanted[rows, where], atol=1e-3)


def test_edit_then_undo_restores_weights_bit_for_bit(pipe):
    edits = [editing.diffquickfix(pipe, "sneaker", "bag"),
             editing.locoedit(pipe, [("sneaker", "bag"), ("coat", "dress")], layers=[4, 5],
                              keep=["boot"])]
    for edit in edits:
        before = {name: lens.dense_kernel(pipe, name)[0]
                  for name in edit.kernels}
        edit.apply(pipe)
        for name in edit.kernels:
            assert not np.array_equal(lens.dense_kernel(pipe, name)[0],
                                      before[name])
        with pytest.raises(RuntimeError, match="already applied"):
            edit.apply(pipe)
        edit.undo(pipe)
        for name in edit.kernels:
            np.testing.assert_array_equal(lens.dense_kernel(pipe, name)[0],
                                          before[name])


def test_an_edit_belongs_to_its_pipeline_and_edits_unwind_last_in_first_out(pipe):
    name = "text.layer_0.attn.out_proj"
    original = lens.dense_kernel(pipe, name)[0]
    first = editing.Edit({name: original + 1.0})
    second = editing.Edit({name: original + 2.0})
    other = load_pipeline("tiny")
    first.apply(pipe)
    second.apply(pipe)
    try:
        with pytest.raises(ValueError, match="applied to another pipeline"):
            first.undo(other)
        with pytest.raises(RuntimeError, match=r"1 edit\(s\) applied after this one"):
            first.undo(pipe)
        np.testing.assert_array_equal(lens.dense_kernel(pipe, name)[0], original + 2.0)
        np.testing.assert_array_equal(lens.dense_kernel(other, name)[0], original)
    finally:
        second.undo(pipe)
        first.undo(pipe)
    np.testing.assert_array_equal(lens.dense_kernel(pipe, name)[0], original)


@pytest.mark.long  # 22 s: builds a second pipeline
def test_saved_edit_loads_into_a_fresh_model_and_gives_the_same_images(pipe, tmp_path):
    edit = editing.locoedit(pipe, [("sneaker", "bag")], layers=[5, 6], positions="all")
    path = tmp_path / "edit.npz"
    edit.save(path)
    loaded = editing.load_edit(path)
    assert loaded.info == edit.info and set(loaded.kernels) == set(edit.kernels)
    kwargs = dict(num_steps=STEPS, seed=0, unconditional_guidance_scale=5.0)
    edit.apply(pipe)
    try:
        first = pipe.sampler.generate("a sneaker", **kwargs).images
    finally:
        edit.undo(pipe)
    fresh = load_pipeline("tiny")
    loaded.apply(fresh)
    second = fresh.sampler.generate("a sneaker", **kwargs).images
    np.testing.assert_array_equal(first, second)
    plain = fresh.sampler.generate("a sneaker", **kwargs).images
    loaded.undo(fresh)
    np.testing.assert_array_equal(plain, second)  # applied edits stay until undone


# --- Text concepts on SD v1.4 (random weights, 64x64, CLIP's real BPE tokenizer), at the mini
# widths (conftest's `sd14_mini`: the same layers and sites); the full widths run in the slow
# script test below. ---

PRESIDENT = "the President of the United States"


@pytest.fixture
def sd14(sd14_mini):
    return sd14_mini


def test_sd14_multi_token_phrase_key_rows_are_its_tokens_and_get_the_target(sd14):
    prompt = f"a portrait of {PRESIDENT}"
    ids = sd14.tokenizer.encode(PRESIDENT)[1:-1]  # keras-cv's SimpleTokenizer, no start/end
    row = list(np.asarray(sd14.tokens([prompt]))[0])
    start = 4  # start token, "a", "portrait", "of"
    assert len(ids) == 6 and row[start:start + len(ids)] == ids
    for which, expected in (("concept", [start + 5]), ("span", list(range(start, start + 6)))):
        _, source, _ = methods.concept_rows(sd14, [prompt], PRESIDENT, "Snoopy", which)
        assert [t for _, t in source] == expected
    edit = editing.diffquickfix(sd14, PRESIDENT, "Snoopy", lam=1e-6, positions="span",
                                prompts=[prompt])
    assert edit.info["num_keys"] == 6
    swapped, source, target = methods.concept_rows(sd14, [prompt], PRESIDENT, "Snoopy", "span")
    site = "text.layer_0.attn.out"
    wanted = methods.text_records(sd14, swapped, [site])[site]
    edit.apply(sd14)
    try:
        got = methods.text_records(sd14, [prompt], [site])[site]
    finally:
        edit.undo(sd14)
    np.testing.assert_allclose(np.stack([got[i, t] for i, t in source]),
                               np.stack([wanted[i, t] for i, t in target]), atol=1e-3)


def sd14_edits(sd14):
    return [editing.diffquickfix(sd14, "Van Gogh", "a painting", keep=["Monet"]),
            editing.locoedit(sd14, [("Van Gogh", "a painting"), ("Snoopy", "a dog")],
                             layers=[6], keep=["Monet"], positions="span", prompts=[
                                 "a painting in the style of Van Gogh", "Snoopy in a field"])]


def test_sd14_edits_with_a_keep_set_undo_bit_for_bit(sd14):
    edits = sd14_edits(sd14)
    assert edits[1].info["num_keys"] == 3 and set(edits[1].kernels) == {
        "spatial_transformer_6.attn2.to_k", "spatial_transformer_6.attn2.to_v"}
    for edit in edits:
        before = {name: lens.dense_kernel(sd14, name)[0] for name in edit.kernels}
        edit.apply(sd14)
        for name in edit.kernels:
            assert not np.array_equal(lens.dense_kernel(sd14, name)[0], before[name])
        edit.undo(sd14)
        for name in edit.kernels:
            np.testing.assert_array_equal(lens.dense_kernel(sd14, name)[0], before[name])


def test_sd14_edited_images_change_and_undo_gives_the_same_images(sd14):
    kwargs = dict(num_steps=1, seed=0, unconditional_guidance_scale=5.0)
    plain = sd14.sampler.generate("Van Gogh", **kwargs).images
    for edit in sd14_edits(sd14):
        edit.apply(sd14)
        changed = sd14.sampler.generate("Van Gogh", **kwargs).images
        edit.undo(sd14)
        assert not np.array_equal(changed, plain)
    np.testing.assert_array_equal(sd14.sampler.generate("Van Gogh", **kwargs).images, plain)


def test_sd14_bad_phrases_name_what_is_valid(sd14):
    with pytest.raises(ValueError, match=r"'Monet' is not in the prompt 'a painting by Van Gogh'"
                                         r": give one of its words \['a', 'painting', 'by'"):
        editing.diffquickfix(sd14, "Monet", "a painting", prompts=["a painting by Van Gogh"])
    with pytest.raises(ValueError, match="both 'Van Gogh'"):
        editing.diffquickfix(sd14, "Van Gogh", "van  gogh")
    with pytest.raises(ValueError, match=r"holds \['van gogh'\], the edit's own"):
        editing.locoedit(sd14, [("Van Gogh", "a painting")], layers=[6], keep=["van gogh"])
    with pytest.raises(ValueError, match="none of the 1 prompts names 'Snoopy'"):
        editing.locoedit(sd14, [("Van Gogh", "a painting"), ("Snoopy", "a dog")], layers=[6],
                         prompts=["a painting by Van Gogh"])


@pytest.mark.slow
def test_edit_model_script_runs_on_sd14_with_a_prompt_file(clip_bpe_dir, tmp_path):
    from test_bad_input import parse, script

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a painting in the style of Van Gogh\n\na field, painted by Van Gogh\n")
    with script("edit_model") as module:
        parse("--model=sd14", "--random_weights", f"--weights_dir={clip_bpe_dir}",
              "--img_height=64", "--img_width=64", "--num_steps=1", "--num_seeds=1",
              "--concept=Van Gogh", "--target=a painting", "--keep=Monet",
              f"--prompts_file={prompts}", f"--output_dir={tmp_path / 'out'}")
        module.main([])
    name = "diffquickfix_van_gogh_to_a_painting_keep_monet"  # safe_name: lower case
    edit = editing.load_edit(str(tmp_path / "out" / f"{name}.npz"))
    assert edit.info["prompts"] == ["a painting in the style of Van Gogh",
                                    "a field, painted by Van Gogh"]
    assert (tmp_path / "out" / f"{name}_before_after.png").stat().st_size > 0


def test_edit_model_prompt_file_and_scorer_are_checked_before_any_model(tmp_path):
    from test_bad_input import parse, script

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a painting by Van Gogh\na photo of a cat\n")
    with script("edit_model") as module:
        parse("--model=sd14", "--concept=Van Gogh", "--target=a painting",
              f"--prompts_file={prompts}")
        with pytest.raises(app.UsageError, match="1 line.s. do not name --concept='Van Gogh', "
                                                 "e.g. 'a photo of a cat'"):
            module._check_flags()
        parse("--model=sd14", "--concept=Van Gogh", "--scorer=judge")
        with pytest.raises(app.UsageError, match="--scorer=judge is tiny's"):
            module._check_flags()
        parse("--model=sd14", "--concept=Van Gogh", "--keep=others")
        with pytest.raises(app.UsageError, match="--keep=others is tiny's"):
            module._check_flags()
