"""U-Net activations collected while generating, for training and reading an SAE.

The default site is SAeUron's: SD 1.4's `up_blocks.1.attentions.1` (diffusers numbering) is
`spatial_transformer_8` here (the second transformer of the first up block that has attention,
counting 0..5 down, 6 middle, 7..15 up). Each spatial position of each (step, image) is one
token of width C (tiny: 2 x 4 positions x 96 channels; SD 1.4 at 512: 16 x 16 x 1280).
"""

import numpy as np
from tqdm.auto import tqdm

from keras_sd_interp import lens

DEFAULT_SITE = "spatial_transformer_8"
DIFFUSERS_NAME = "up_blocks.1.attentions.1"


def collect(pipe, prompts, site=DEFAULT_SITE, num_steps=25, steps=None, guidance=5.0, seed=0,
            batch_size=32, progress=True):
    """Generates `prompts` and records `site` (conditional half) at `steps`.

    Args:
        prompts: list of N strings; batch b of `batch_size` uses seed `seed + b`.
        steps: step indices to keep (None: every step).
    Returns:
        dict: activations float32 (S, N, h, w, C); images uint8 (N, H, W, 1); timesteps (S,)
        int; steps (S,) int; prompts (N,).
    """
    acts, images, timesteps = [], [], None
    starts = range(0, len(prompts), batch_size)
    for b, start in enumerate(tqdm(starts, desc=f"collect {site}", disable=not progress)):
        chunk = list(prompts[start:start + batch_size])
        with lens.trace(pipe, record=site, steps=steps, reduce=None) as tr:
            gen = pipe.sampler.generate(chunk, batch_size=1, num_steps=num_steps,
                                        unconditional_guidance_scale=guidance, seed=seed + b)
        acts.append(np.asarray(tr[site], np.float32))
        images.append(gen.uint8())
        timesteps, kept = np.asarray(tr.timesteps), np.asarray(tr.steps)
    return {"activations": np.concatenate(acts, axis=1), "images": np.concatenate(images),
            "timesteps": timesteps, "steps": kept, "prompts": list(prompts)}


def as_tokens(activations):
    """(S, N, h, w, C) -> (S * N * h * w, C): every position of every step is a token."""
    return activations.reshape(-1, activations.shape[-1])


def training_prompts(num_prompts, seed=0, single_share=0.25):
    """Tiny prompts: "a X and a Y" pairs and "a X" singles over the 10 classes, seeded.

    Returns (prompts, left classes (N,), right classes (N,) with -1 for singles)."""
    from keras_sd_interp.data.compositions import pair_caption, single_caption

    rng = np.random.default_rng(seed)
    left = rng.integers(0, 10, num_prompts)
    right = rng.integers(0, 10, num_prompts)
    single = rng.random(num_prompts) < single_share
    prompts = [single_caption(a) if s else pair_caption(a, b)
               for a, b, s in zip(left, right, single)]
    return prompts, left, np.where(single, -1, right)
