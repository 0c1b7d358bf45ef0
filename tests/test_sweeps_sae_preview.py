"""The SAE preview (atlas) regenerates each latent's best prompt from the noise on which the
profile saw it fire, so the latent fires in its own preview."""

import numpy as np
import pytest

from keras_sd_interp.sweeps.shards import Shard
from keras_sd_interp.sweeps.jobs.sae_latents import SaeEditJob


@pytest.mark.long
def test_sae_preview_starts_from_the_profile_noise():
    job = SaeEditJob(amplify=8.0, profile_prompts=4, num_steps=2, batch_size=2)
    context = job.build()
    profile = context["profile"]
    latent = int(np.argmax(profile["peak"]))            # the latent that fires most
    arrays = job.run(context, Shard(job.name, "sae", latent, latent + 1))
    regenerated = context["pipe"].sampler.generate(
        job.profile_prompt_list(), num_steps=2, unconditional_guidance_scale=job.guidance,
        diffusion_noise=profile["noise"]).uint8()
    index = int(arrays["prompt_index"][0])
    assert index == profile["best_prompt"][latent]
    difference = np.abs(arrays["before"][0].astype(np.int16) - regenerated[index])
    assert difference.max() <= 2                         # same noise, another batch
    assert arrays["change_amplified"][0] > 1e-3 and arrays["change_ablated"][0] > 0
