"""scripts/visualize_features.py: --model=sd14 with an SAE in SAeUron's format; flags, the SAE's
size and width checked before any model; end to end on tiny and SD v1.4 random (slow: 6 minutes
for tiny alone on the loaded 2-core machine, mostly tracing)."""

import json

import numpy as np
import pytest
from absl import app, flags
from script_helpers import parsed_script, run_script

from keras_sd_interp.sae import SparseAutoencoder
from keras_sd_interp.training.sae import save_saeuron





@pytest.fixture(scope="module")
def sd14_sae(tmp_path_factory):
    """A SAeUron-format SAE at SD 1.4's st_8 width (1280 -> 1280 latents), random numbers."""
    folder = tmp_path_factory.mktemp("ck") / "unet.up_blocks.1.attentions.1"
    save_saeuron(str(folder), SparseAutoencoder(1280, expansion=1, k=4, seed=3))
    return str(folder)


def test_sd14_checks_before_any_model(sd14_sae, tmp_path):
    cases = [(["--model=sd14", "--latents=3"], "has no bundled SAE: give --sae"),
             (["--model=sd14", f"--sae={sd14_sae}", "--latents=1280"],
              r"1280 is out of range: the SAE has 1280 latents \(0..1279\)"),
             (["--model=sd14", f"--sae={sd14_sae}", "--latents=1", "--site=spatial_transformer_13"],
              "d_in 1280; spatial_transformer_13 of --model=sd14 has 320 channels"),
             (["--model=sd14", f"--sae={tmp_path}/missing.npz", "--latents=1"],
              "--sae: SAE file .*missing.npz' does not exist")]
    for args, expected in cases:
        with parsed_script("visualize_features", *args) as module:
            with pytest.raises(app.UsageError, match=expected):
                module.main([])
    with pytest.raises(flags.IllegalFlagValueError, match="bad index '-1'"):
        with parsed_script("visualize_features", "--latents=-1"):
            pass




@pytest.mark.slow
def test_tiny_end_to_end(tmp_path):
    result = run_script("visualize_features", "--latents=5", "--channels=2", "--timestep=400",
                        "--steps=3",
                        f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "diffusion_record.json").read_text())
    assert record["items"] == ["latent_5", "channel_2"] and record["timesteps"] == [400, 400]
    assert np.isfinite(record["objective_end"]).all()
    assert (tmp_path / "diffusion_latent_5.png").exists()


@pytest.mark.slow
def test_sd14_random_weights_end_to_end(sd14_sae, tmp_path):
    """SD v1.4 topology with random weights at 64x64, the SAeUron-format SAE, peak timestep
    from a traced 2-step generation with CLIP's real tokenizer (skipped where unreachable)."""
    from keras_sd_interp.models.weights import MissingWeightsError, sd14_weight_path

    try:
        sd14_weight_path("bpe_vocab")
    except MissingWeightsError as error:
        pytest.skip(f"CLIP's BPE vocabulary is not reachable (the PyPI sdist openai-clip has "
                    f"it): {error}")
    result = run_script("visualize_features", "--model=sd14", "--random_weights",
                        "--img_height=64", "--img_width=64",
                        f"--sae={sd14_sae}", "--latents=7,100", "--timestep=peak",
                        "--trace_steps=2", "--prompts=a photo of a cat", "--steps=2",
                        f"--output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "diffusion_record.json").read_text())
    assert record["model"] == "sd14" and len(record["timesteps"]) == 2
    from PIL import Image

    assert Image.open(tmp_path / "diffusion_latent_100.png").size == (64, 64)
