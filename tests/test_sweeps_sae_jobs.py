"""The atlas's SAE jobs: the preview regenerates each latent's best prompt from the noise on
which the profile saw it fire; the visualization compiles one step for every shard, and a
shard's images do not depend on which shard ran before it."""

import numpy as np
import pytest

from keras_sd_interp.featureviz import objectives as obj
from keras_sd_interp.sae import load_sae
from keras_sd_interp.sweeps.jobs.activity import BUNDLED_SAE, SAE_SITE
from keras_sd_interp.sweeps.jobs.sae_latents import SaeEditJob, SaeVizJob
from keras_sd_interp.sweeps.shards import Shard

PROFILE = dict(profile_prompts=4, num_steps=2, batch_size=2)


def test_item_sae_features_equal_one_term_per_item():
    sae = load_sae(BUNDLED_SAE)
    acts = {SAE_SITE: np.random.default_rng(0).normal(size=(3, 2, 4, sae.W_enc.shape[0]))
            .astype(np.float32)}
    latents = [5, 300, 1535]
    batched = obj.item_sae_features(SAE_SITE, sae, np.array(latents, np.int32))(acts).numpy()
    terms = obj.feature_batch(SAE_SITE, sae, latents)[0](acts).numpy()
    np.testing.assert_allclose(batched, terms, rtol=1e-5, atol=1e-5)


@pytest.mark.long
def test_sae_preview_starts_from_the_profile_noise():
    job = SaeEditJob(amplify=8.0, **PROFILE)
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


@pytest.mark.long
def test_sae_visualization_traces_once_and_ignores_shard_order():
    job = SaeVizJob(steps=3, **PROFILE)
    first, second = (Shard(job.name, "sae", a, a + 2) for a in (10, 40))
    context = job.build()
    alone = job.run(context, second)
    traces = context["visualizer"].step.experimental_get_tracing_count()  # 2: the optimizer's
    job.run(context, first)                                                # slots on the first
    again = job.run(context, second)
    assert context["visualizer"].step.experimental_get_tracing_count() == traces
    np.testing.assert_array_equal(alone["images"], again["images"])
    np.testing.assert_array_equal(alone["objective"], again["objective"])
    assert not np.array_equal(alone["objective"], job.run(context, first)["objective"])
