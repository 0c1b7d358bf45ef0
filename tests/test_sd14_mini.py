"""Fast tests of every tool's SD v1.4 path on the mini SD v1.4 (`config.SD14_MINI`: the same
layers, site names, 70 components, 16 cross-attention layers and 12-layer CLIP text encoder
with CLIP's real BPE tokenizer, at small widths, random weights, 64x64). The scripts run in
process on the session's mini pipeline (`cli.pipeline_from_flags` patched to return it, after
checking the flags ask for it), so one build serves them all. The full-width runs of the same
paths are the slow tests (test_causal_trace_sd14.py, test_editing.py, ...); the edits' own
fast tests on the mini model (apply, images change, undo bit for bit) are in test_editing.py."""

import json

import numpy as np
import pytest
from absl import flags
from script_helpers import parsed_script

from keras_sd_interp import cli, editing, lens
from keras_sd_interp.attribution import daam
from keras_sd_interp.editing import methods
from keras_sd_interp.lens import components as parts
from keras_sd_interp.models import SD14, SD14_MINI, load_pipeline, load_unet



def test_mini_has_sd14s_layers_and_sites_at_small_widths(sd14_mini):
    assert sd14_mini.config == SD14_MINI and SD14_MINI.name == SD14.name == "sd14"
    sites = lens.list_sites(sd14_mini)
    assert len(sd14_mini.diffusion_model.layers) == 66
    assert len(parts.unet_components(sd14_mini)) == 70
    assert [i for i in range(16) if f"spatial_transformer_{i}.attn2" in sites] == list(range(16))
    assert sites["spatial_transformer_8"] == (2, 2, 128)        # SD v1.4: (2, 2, 1280) at 64 px
    assert sites["text.layer_11.attn.probs"] == (12, 77, 77)    # 12 layers, 12 heads, 77 tokens
    assert sites["text.final_norm"] == (77, SD14_MINI.context_dim)
    assert lens.concept_span(sd14_mini, "a painting by Van Gogh", "Van Gogh").ids == (2451, 19697)


def test_mini_is_refused_without_random_weights_and_off_sd14(clip_bpe_dir):
    with pytest.raises(ValueError, match="random weights only: SD v1.4's weight files need"):
        load_pipeline("sd14", 64, 64, weights_dir=clip_bpe_dir, size="mini")
    with pytest.raises(ValueError, match="random weights only"):
        load_unet("sd14", 64, 64, 77, size="mini")
    with pytest.raises(ValueError, match="goes with model 'sd14', not 'tiny'"):
        load_pipeline("tiny", random_weights=True, size="mini")
    with pytest.raises(ValueError, match=r"size='huge': choose one of \['full', 'mini'\]"):
        load_pipeline("sd14", random_weights=True, size="huge")
    with pytest.raises(flags.IllegalFlagValueError, match="--model_size=mini: size='mini' has"):
        with parsed_script("causal_trace", "--model=sd14", "--model_size=mini"):
            pass


@pytest.fixture
def scripts_use_mini(sd14_mini, monkeypatch):
    """`cli.pipeline_from_flags` returns the session's mini pipeline, once the flags are checked
    to name it (sd14, mini, random weights, 64x64)."""

    def from_flags(flag_values, img_height=None, img_width=None):
        assert (flag_values.model, flag_values.model_size, flag_values.random_weights) == \
            ("sd14", "mini", True)
        assert (flag_values.img_height, flag_values.img_width) == (64, 64)
        return sd14_mini

    monkeypatch.setattr(cli, "pipeline_from_flags", from_flags)
    return from_flags


def run_in_process(name, *args, patch=None):
    with parsed_script(name, *args) as module:
        if patch is not None and hasattr(module, "pipeline_from_flags"):
            module.pipeline_from_flags = patch
        module.main([])


def mini_flags(clip_bpe_dir):
    return ["--model=sd14", "--model_size=mini", "--random_weights",
            f"--weights_dir={clip_bpe_dir}", "--img_height=64", "--img_width=64"]


@pytest.mark.long  # 45 s
def test_causal_trace_restoring_every_component_gives_the_clean_clip_score(sd14_mini):
    from keras_sd_interp.scoring import sd14_clip_scorer

    from test_causal_trace_sd14 import assert_restoring_every_component_gives_the_clean_score

    scorer = sd14_clip_scorer(sd14_mini.tokenizer, random_weights=True)
    assert_restoring_every_component_gives_the_clean_score(sd14_mini, scorer,
                                                           SD14_MINI.context_dim)


# The fast set keeps one SD v1.4 test per tool: this one (causal tracing), the SAE, feature
# visualization and DAAM below, the edits in tests/test_editing.py.
def test_causal_trace_script_end_to_end(clip_bpe_dir, scripts_use_mini, tmp_path):
    out = tmp_path / "trace"
    from test_causal_trace_sd14 import SCRIPT_ARGS, assert_script_output

    run_in_process("causal_trace", *mini_flags(clip_bpe_dir), *SCRIPT_ARGS,
                   f"--output_dir={out}")
    assert_script_output(out)


def test_locoedit_shared_solve_gives_the_per_kernel_kernels(sd14_mini):
    pairs, layers = [("Van Gogh", "a painting"), ("Snoopy", "a dog")], [6, 7, 12]
    edit = editing.locoedit(sd14_mini, pairs, layers=layers, lam=0.05, keep=["Monet"])
    reference = methods.locoedit_unshared(sd14_mini, pairs, layers, 0.05, ["Monet"])
    assert sorted(edit.kernels) == sorted(reference)
    for name, kernel in reference.items():
        change = np.abs(kernel - lens.dense_kernel(sd14_mini, name)[0]).max()
        assert change > 1e-3  # the edit moves the kernel ...
        np.testing.assert_allclose(edit.kernels[name], kernel, rtol=0, atol=1e-4 * change)


@pytest.mark.long  # 19 s
def test_edit_model_script_diffquickfix_and_locoedit(clip_bpe_dir, scripts_use_mini, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a painting in the style of Van Gogh\na field, painted by Van Gogh\n")
    common = [*mini_flags(clip_bpe_dir), "--num_steps=1", "--num_seeds=1", "--concept=Van Gogh",
              "--target=a painting", "--keep=Monet", f"--prompts_file={prompts}",
              f"--output_dir={tmp_path / 'out'}"]
    for method in ("diffquickfix", "locoedit"):
        run_in_process("edit_model", *common, f"--method={method}",
                       *(["--layers=6,7"] if method == "locoedit" else []),
                       patch=scripts_use_mini)
        name = f"{method}_van_gogh_to_a_painting_keep_monet"
        edit = editing.load_edit(str(tmp_path / "out" / f"{name}.npz"))
        assert edit.info["method"] == method and edit.info["keep"] == ["Monet"]
        assert edit.info["prompts"] == ["a painting in the style of Van Gogh",
                                        "a field, painted by Van Gogh"]
        assert (tmp_path / "out" / f"{name}_before_after.png").stat().st_size > 0


def test_train_sae_collects_and_trains_on_the_sd14_site(clip_bpe_dir, scripts_use_mini,
                                                        tmp_path):
    from keras_sd_interp.sae import load_sae

    run_in_process("train_sae", *mini_flags(clip_bpe_dir),
                   "--prompts=a photo of a cat,a bottle in a room", "--num_steps=2",
                   "--collect_batch=1", "--batch_size=4", "--expansion=1", "--k=4",
                   "--train_steps=2", f"--run_dir={tmp_path}/run",
                   f"--output={tmp_path}/sd14.npz")
    sae = load_sae(str(tmp_path / "sd14.npz"))
    assert (sae.d_in, sae.num_latents) == (128, 128)  # spatial_transformer_8's mini width
    shards = sorted((tmp_path / "run" / "activations").glob("shard_*.npz"))
    assert len(shards) == 2
    with np.load(shards[0]) as shard:
        assert shard["tokens"].shape == (2 * 4, 128)                # 2 steps x 2 x 2 positions
        assert np.isfinite(shard["tokens"]).all() and shard["tokens"].std() > 0


def test_visualize_features_script_on_a_saeuron_format_sae(clip_bpe_dir, scripts_use_mini,
                                                           tmp_path):
    from PIL import Image

    from keras_sd_interp.sae import SparseAutoencoder
    from keras_sd_interp.training.sae import save_saeuron

    folder = tmp_path / "ck" / "unet.up_blocks.1.attentions.1"
    save_saeuron(str(folder), SparseAutoencoder(128, expansion=1, k=4, seed=3))
    run_in_process("visualize_features", *mini_flags(clip_bpe_dir), f"--sae={folder}",
                   "--latents=7,100", "--timestep=peak", "--trace_steps=2",
                   "--prompts=a photo of a cat", "--steps=2", f"--output_dir={tmp_path}/out")
    record = json.loads((tmp_path / "out" / "diffusion_record.json").read_text())
    assert record["model"] == "sd14" and len(record["timesteps"]) == 2
    image = np.asarray(Image.open(tmp_path / "out" / "diffusion_latent_100.png"))
    assert image.shape[:2] == (64, 64) and image.std() > 0


def test_daam_and_generation_with_clips_tokenizer(sd14_mini):
    with daam.trace(sd14_mini) as tc:
        gen = sd14_mini.sampler.generate("a painting by Van Gogh", num_steps=2, seed=0)
    assert gen.images.shape == (1, 64, 64, 3) and np.isfinite(gen.images).all()
    assert tc.trace["spatial_transformer_0.attn2.probs"].shape == (1, 8, 64, 77)
    assert tc.token_indices("Van Gogh") == [4, 5]
    heat = tc.heat_map("Van Gogh")
    assert heat.shape == (64, 64) and np.isfinite(heat).all() and heat.std() > 0
    images = sd14_mini.text_to_image("a painting by Van Gogh", num_steps=1, seed=0)
    assert images.dtype == np.uint8 and images.shape == (1, 64, 64, 3)
