"""Causal tracing on SD v1.4 (random weights, 64x64, CLIP's real BPE tokenizer, CLIP-Score by a
small random keras-cv CLIP): restoring every component gives the clean score, none the corrupted
one; the script end to end. Slow: the full-width U-Net is built and its step traced (about 170
CPU-seconds for the script on this 2-core machine)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from keras_sd_interp.attribution import causal_trace as ct
from keras_sd_interp.lens import components as parts

PROMPT, SUBJECT = "a photo of a bottle in a room", "bottle"


@pytest.mark.slow
def test_sd14_restoring_every_component_gives_the_clean_clip_score(clip_bpe_dir):
    from keras_sd_interp.models import load_pipeline
    from keras_sd_interp.scoring import sd14_clip_scorer

    pipe = load_pipeline("sd14", 64, 64, weights_dir=clip_bpe_dir, random_weights=True)
    scorer = sd14_clip_scorer(pipe.tokenizer, random_weights=True)
    assert_restoring_every_component_gives_the_clean_score(pipe, scorer, 768)


def assert_restoring_every_component_gives_the_clean_score(pipe, scorer, width):
    """One step at guidance 5: restoring all 70 U-Net components gives the clean image and
    CLIP-Score, restoring none the corrupted one (pipe: SD v1.4 at text width `width`)."""
    tokens = ct.subject_tokens(pipe, [(PROMPT, SUBJECT)])[0]
    assert tokens == [5]  # start, a, photo, of, a, bottle
    components = parts.unet_components(pipe)
    assert len(components) == 70
    noise = pipe.sampler.initial_noise(1, 0).numpy()
    clean, clean_image = ct.clean_run(pipe, PROMPT, noise, components, 1, 5.0)
    corruption = ct.Corruption()
    corruption.set((1, 77, width), tokens, 3 * ct.embedding_std(pipe, [PROMPT]), seed=0)
    none = ct.restored_images(pipe, PROMPT, noise, clean, corruption, [[]], 1, 5.0)
    every = ct.restored_images(pipe, PROMPT, noise, clean, corruption, [components], 1, 5.0)
    np.testing.assert_array_equal(every, clean_image)
    assert np.abs(none.astype(int) - clean_image).max() > 0
    assert scorer(every, PROMPT)[0] == scorer(clean_image, PROMPT)[0]
    assert scorer(none, PROMPT)[0] != scorer(clean_image, PROMPT)[0]


@pytest.mark.slow
def test_sd14_script_end_to_end(clip_bpe_dir, tmp_path):
    out = tmp_path / "trace"
    done = subprocess.run(
        [sys.executable, "scripts/causal_trace.py", "--model=sd14", "--random_weights",
         f"--weights_dir={clip_bpe_dir}", "--img_height=64", "--img_width=64",
         *SCRIPT_ARGS, f"--output_dir={out}"], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_script_output(out)


SCRIPT_ARGS = [f"--prompt={PROMPT}", f"--subject={SUBJECT}", "--seeds=0", "--num_steps=1",
               "--components=spatial_transformer_3.attn2,res_block_0,text.layer_11.mlp.out@5"]


def assert_script_output(out):
    """The JSON and figures of the script run with SCRIPT_ARGS into `out`."""
    with open(out / "causal_trace.json") as f:
        result = json.load(f)
    assert result["components"] == ["res_block_0", "spatial_transformer_3.attn2",
                                    "text.layer_11.mlp.out@5"]
    assert result["subject_tokens"] == [[5]] and list(result["by_scorer"]) == ["clip"]
    np.testing.assert_allclose(result["effect"], np.asarray(result["restored"])[0, 0]
                               - result["corrupted"][0][0], atol=1e-6)
    assert (out / "unet_effect.png").exists() and (out / "text_effect.png").exists()
