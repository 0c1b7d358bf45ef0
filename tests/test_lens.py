"""The lens around a whole generation: sampler, trace, patching, text-encoder sites."""

import numpy as np
import pytest
import tensorflow as tf
from keras_cv.src.models.stable_diffusion.stable_diffusion import StableDiffusionBase

from keras_sd_interp import lens
from keras_sd_interp.lens import sites, taps
from keras_sd_interp.models.sampler import Sampler, ddim_timesteps
from keras_sd_interp.models import load_pipeline
from keras_sd_interp.models.layers import timestep_embedding

PROMPT = "a sneaker and a bag"
STEPS = 6


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline("tiny")


def keras_cv_images(pipe, prompt, **kwargs):
    """keras-cv's own text_to_image on `pipe`, returning the decoder's float output."""
    captured = {}
    original = pipe.decoder.predict_on_batch

    def capture(latent):
        captured["images"] = original(latent)
        return captured["images"]

    pipe.decoder.predict_on_batch = capture
    try:
        StableDiffusionBase.text_to_image(pipe, prompt, **kwargs)
    finally:
        del pipe.decoder.predict_on_batch
    return captured["images"]


def generate(pipe, sampler=None, prompt=PROMPT, **kwargs):
    kwargs = dict(dict(num_steps=STEPS, seed=0, unconditional_guidance_scale=5.0), **kwargs)
    return (sampler or pipe.sampler).generate(prompt, **kwargs)


def test_timesteps_follow_keras_cv_spacing():
    assert list(ddim_timesteps(5)) == [0, 250, 500, 749, 999]  # round((0..4) * 999 / 4)
    assert list(ddim_timesteps(1)) == [0]


def test_sampler_equals_keras_cv_text_to_image(pipe):
    reference = keras_cv_images(pipe, PROMPT, batch_size=2, num_steps=STEPS, seed=0,
                                unconditional_guidance_scale=5.0)
    two_calls = generate(pipe, Sampler(pipe, batched_guidance=False), batch_size=2)
    np.testing.assert_array_equal(two_calls.images, reference)  # same ops, same order
    batched = generate(pipe, batch_size=2)  # one 2B batch: other kernel blocking, float noise
    np.testing.assert_allclose(batched.images, reference, atol=1e-4)
    uint8 = pipe.text_to_image(PROMPT, batch_size=2, num_steps=STEPS, seed=0,
                               unconditional_guidance_scale=5.0)
    assert uint8.dtype == np.uint8 and uint8.shape == (2, 32, 64, 1)


def test_list_of_prompts_in_one_call_equals_separate_calls(pipe):
    noise = pipe.sampler.initial_noise(2, seed=3)
    both = generate(pipe, prompt=["a dress", "a boot"], seed=None, diffusion_noise=noise)
    dress = generate(pipe, prompt="a dress", seed=None, diffusion_noise=noise[:1])
    boot = generate(pipe, prompt="a boot", seed=None, diffusion_noise=noise[1:])
    assert both.prompts == ["a dress", "a boot"]
    np.testing.assert_allclose(both.images[:1], dress.images, atol=1e-4)
    np.testing.assert_allclose(both.images[1:], boot.images, atol=1e-4)
    assert np.abs(dress.images - boot.images).max() > 0.1  # the prompts do differ


def test_trace_with_nothing_and_recording_leave_images_bit_identical(pipe):
    plain = generate(pipe)
    with lens.trace(pipe):
        empty = generate(pipe)
    with lens.trace(pipe, record="*.attn2.probs", reduce="sum") as tr:
        recorded = generate(pipe)
    np.testing.assert_array_equal(empty.images, plain.images)
    np.testing.assert_array_equal(recorded.images, plain.images)
    probs = tr["spatial_transformer_3.attn2.probs"]
    assert probs.shape == (1, 4, 32, pipe.max_length)
    np.testing.assert_allclose(probs.sum(-1), STEPS, rtol=1e-5)  # STEPS softmaxes summed
    assert len(tr.sites()) == 16
    assert tr.memory_bytes() == sum(tr.get(key.split("|")[0]).nbytes for key in tr.sites())


def test_per_step_records_equal_eager_recomputation(pipe):
    names = ["res_block_3", "spatial_transformer_2.attn2.probs", "text.final_norm"]
    with lens.trace(pipe, record=names + ["sampler.x_t"], half="both") as tr:
        generation = generate(pipe)
    assert tr.steps == list(range(STEPS))
    x_t = tr["sampler.x_t"]  # (steps, 1, 8, 16, 4)
    context = tr.get("text.final_norm", "cond")
    uncond = tr.get("text.final_norm", "uncond")
    dim = pipe.config.time_embedding_dim
    for step, timestep in enumerate(tr.timesteps):
        t_emb = timestep_embedding(tf.constant([timestep, timestep]), dim).numpy()
        inputs = [np.concatenate([x_t[step]] * 2), t_emb, np.concatenate([uncond, context])]
        _, cache = taps.run_with_cache(pipe.diffusion_model, inputs, names[:2])
        for name in names[:2]:
            np.testing.assert_allclose(tr.get(name, "uncond")[step], cache[name][:1], atol=2e-5)
            np.testing.assert_allclose(tr.get(name, "cond")[step], cache[name][1:], atol=2e-5)
    assert tr.generation is not None and generation.images.shape == (1, 32, 64, 1)


def corrupt_subject(pipe, scale=3.0):
    """Edit: Gaussian noise on the text embeddings of 'sneaker' and 'bag' (tokens 2 and 5)."""
    noise = tf.random.stateless_normal((1, pipe.max_length, 64), seed=[1, 2]) * scale
    return sites.add(noise, axis=1, indices=[2, 5])


def unet_sites(name):
    return not name.startswith(("text.", "sampler."))


def test_patching_a_clean_run_into_a_corrupted_run(pipe):
    with lens.trace(pipe, record=unet_sites) as clean:
        clean_images = generate(pipe).images
    with lens.trace(pipe, edits={"text.embed": corrupt_subject(pipe)}):
        corrupted = generate(pipe).images
    assert np.abs(corrupted - clean_images).max() > 0.1
    with lens.trace(pipe, edits={"text.embed": corrupt_subject(pipe),
                                 unet_sites: lens.patch(clean)}):
        restored_everywhere = generate(pipe).images
    np.testing.assert_array_equal(restored_everywhere, clean_images)
    with lens.trace(pipe, edits={"text.embed": corrupt_subject(pipe),
                                 (lambda name: False): lens.patch(clean)}):
        restored_nowhere = generate(pipe).images
    np.testing.assert_array_equal(restored_nowhere, corrupted)
    with lens.trace(pipe, edits={"text.embed": corrupt_subject(pipe),
                                 "*.attn2.k": lens.patch(clean)}):  # every cross-attn key
        keys_restored = generate(pipe).images
    assert 0 < np.abs(keys_restored - clean_images).max() < np.abs(corrupted - clean_images).max()


def test_hook_functions_are_told_where_they_are(pipe):
    seen = []

    def ablate_late(tensor, where):
        seen.append((where.site, where.half))
        return tf.where(where.step >= 3, tf.zeros_like(tensor), tensor)

    with lens.trace(pipe, edits={"spatial_transformer_5.ff": ablate_late}) as tr:
        late = generate(pipe).images
    with lens.trace(pipe, edits={"spatial_transformer_5.ff": sites.scale(0.0)}, steps=range(3, 6)):
        by_steps = generate(pipe).images
    assert seen == [("spatial_transformer_5.ff", "cond")]  # traced once, cond half only
    np.testing.assert_allclose(late, by_steps, atol=1e-5)
    assert tr.steps == list(range(STEPS))


def test_streaming_reducers_equal_reductions_of_kept_steps(pipe):
    site = "spatial_transformer_1.attn2.probs"
    results = {}
    for reduce in (None, "sum", "mean", "max"):
        with lens.trace(pipe, record=site, reduce=reduce, steps=[1, 2, 4]) as tr:
            generate(pipe)
        results[reduce] = tr[site]
    kept = results[None]
    assert kept.shape[0] == 3
    np.testing.assert_allclose(results["sum"], kept.sum(0), rtol=1e-6)
    np.testing.assert_allclose(results["mean"], kept.mean(0), rtol=1e-6)
    np.testing.assert_array_equal(results["max"], kept.max(0))


def test_text_encoder_sites_equal_numpy_clip_layer(pipe):
    layer_sites = ["resid_pre", "attn.probs", "attn.z", "attn.out", "mlp.out", "resid_post"]
    with lens.trace(pipe, record=[f"text.layer_1.{s}" for s in layer_sites]) as tr:
        generate(pipe, num_steps=1)
    got = {s: tr[f"text.layer_1.{s}"][0] for s in layer_sites}
    [layer] = [x for x in pipe.text_encoder.layers if getattr(x, "site_name", "") == "text.layer_1"]
    attn = layer.clip_attn
    heads, width = attn.num_heads, attn.embed_dim

    def norm(x, ln):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-5) * ln.gamma.numpy() + ln.beta.numpy()

    def dense(x, d):
        return x @ d.kernel.numpy() + d.bias.numpy()

    x = got["resid_pre"]
    h = norm(x, layer.layer_norm1)
    n = pipe.max_length
    split = lambda y: y.reshape(n, heads, width // heads).transpose(1, 0, 2)  # noqa: E731
    q, k, v = (split(dense(h, d)) for d in (attn.q_proj, attn.k_proj, attn.v_proj))
    scores = q @ k.transpose(0, 2, 1) * attn.scale + np.triu(np.full((n, n), -np.inf), 1)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    z = (probs @ v).transpose(1, 0, 2).reshape(n, width)
    out = dense(z, attn.out_proj)
    mid = x + out
    f = dense(norm(mid, layer.layer_norm2), layer.fc1)
    mlp = dense(f / (1 + np.exp(-1.702 * f)), layer.fc2)
    for name, value in [("attn.probs", probs), ("attn.z", z), ("attn.out", out),
                        ("mlp.out", mlp), ("resid_post", mid + mlp)]:
        np.testing.assert_allclose(got[name], value, atol=2e-5, err_msg=name)


def test_bad_selections_name_what_is_valid(pipe):
    with pytest.raises(ValueError, match="unknown tap 'res_block_99'"):
        lens.trace(pipe, record="res_block_99")
    with pytest.raises(ValueError, match="matches no site"):
        lens.trace(pipe, record="*.attn3.probs")
    with pytest.raises(ValueError, match="unknown site 'text.layer_9.attn.z'"):
        lens.trace(pipe, record="text.layer_9.attn.z")
    with pytest.raises(ValueError, match=r"half='left': use one of \('cond', 'uncond', 'both'\)"):
        lens.trace(pipe, half="left")
    with pytest.raises(ValueError, match="reduce='median'"):
        lens.trace(pipe, record="res_block_1", reduce="median")
    with pytest.raises(ValueError, match=r"steps \[6\] out of range: this generation has steps 0..5"):
        with lens.trace(pipe, record="res_block_1", steps=[0, 6]):
            generate(pipe)
    with pytest.raises(ValueError, match="source must record every step"):
        with lens.trace(pipe, record="res_block_1", reduce="sum") as summed:
            generate(pipe)
        with lens.trace(pipe, edits={"res_block_1": lens.patch(summed)}):
            generate(pipe)
    with pytest.raises(ValueError, match="num_steps=0"):
        generate(pipe, num_steps=0)
    with pytest.raises(ValueError, match="prompt=None"):
        pipe.text_to_image(None)
    with pytest.raises(ValueError, match="unconditional_guidance_scale=nan"):
        generate(pipe, unconditional_guidance_scale=float("nan"))
    with pytest.raises(ValueError, match="batch_size=0"):
        generate(pipe, batch_size=0)


def test_edits_with_out_of_range_indices_are_errors(tiny_unet):
    from tests.conftest import random_unet_inputs

    inputs = random_unet_inputs(tiny_unet, 2)
    for edit, message in [(sites.scale(0.0, axis=-1, indices=[999]), r"\[999\] out of range"),
                          (sites.scale(0.0, axis=-1, indices=[-1]), r"\[-1\] out of range"),
                          (sites.scale(0.0, batch=[5]), r"batch items \[5\] out of range")]:
        with pytest.raises(ValueError, match=message):
            taps.run_with_hooks(tiny_unet, inputs, {"res_block_3.conv1": edit})


def test_sd14_text_encoder_loads_keras_cv_weights(tmp_path):
    import keras
    from keras_cv.src.models.stable_diffusion.text_encoder import TextEncoder

    from keras_sd_interp.models.text_encoder import build_sd14_text_encoder
    from tests.test_weights import write_legacy_h5

    keras.utils.set_random_seed(0)
    reference = TextEncoder(77, download_weights=False)
    path = str(tmp_path / "kcv_encoder.h5")
    write_legacy_h5(reference, path)
    rebuilt = build_sd14_text_encoder(77)
    rebuilt.load_weights(path)
    tokens = np.random.default_rng(0).integers(0, 49408, (2, 77)).astype("int32")
    inputs = {"tokens": tokens, "positions": np.tile(np.arange(77, dtype="int32"), (2, 1))}
    np.testing.assert_array_equal(rebuilt(inputs).numpy(), reference(inputs).numpy())


class WordHashTokenizer:
    """Stands in for CLIP's BPE tokenizer (its vocabulary file is a download): start, one id
    per word, end."""

    def encode(self, text):
        return [49406] + [1000 + sum(map(ord, word)) for word in text.split()] + [49407]


@pytest.mark.slow
def test_sampler_equals_keras_cv_on_random_sd14_at_64x64():
    import keras

    keras.utils.set_random_seed(0)
    sd14 = load_pipeline("sd14", 64, 64, random_weights=True)
    sd14._tokenizer = WordHashTokenizer()
    kwargs = dict(num_steps=3, seed=0, unconditional_guidance_scale=7.5)
    reference = keras_cv_images(sd14, "an astronaut riding a horse", **kwargs)
    ours = Sampler(sd14, batched_guidance=False).generate("an astronaut riding a horse", **kwargs)
    assert ours.images.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(ours.images, reference, atol=1e-5)
    batched = sd14.sampler.generate("an astronaut riding a horse", **kwargs)
    np.testing.assert_allclose(batched.images, reference, atol=1e-4)


def test_text_sites_are_listed_with_shapes(pipe):
    from keras_sd_interp.lens.catalog import text_site_shapes
    from keras_sd_interp.reports.unet import text_report

    shapes = text_site_shapes(pipe.text_encoder)
    n, layers = pipe.max_length, pipe.record["text_layers"]
    assert (n, layers) == (13, 6)                       # the shipped tiny CLIP's text tower
    assert len(shapes) == 2 + layers * 6
    assert shapes["text.layer_1.attn.probs"] == (4, n, n)
    assert shapes["text.layer_0.attn.z"] == (n, 64)
    report = text_report(pipe.text_encoder)
    assert "text.final_norm" in report and "sampler.eps" in report
    assert set(shapes) <= set(lens.list_sites(pipe))


@pytest.mark.long  # 18 s
def test_a_patch_refuses_a_source_of_another_batch_or_schedule(pipe):
    site = "spatial_transformer_5.attn2"
    with lens.trace(pipe, record=site) as one_image:
        generate(pipe, num_steps=4)
    with lens.trace(pipe, record=site) as two_images:
        pipe.sampler.generate(PROMPT, batch_size=2, num_steps=4, seed=0)
    with lens.trace(pipe, record=site) as ten_steps:
        generate(pipe, num_steps=10)
    with pytest.raises(ValueError, match=r"made 1 image\(s\), this run makes 3"):
        with lens.trace(pipe, edits={site: lens.patch(one_image)}):
            pipe.sampler.generate(PROMPT, batch_size=3, num_steps=4, seed=0)
    with pytest.raises(ValueError, match=r"made 2 image\(s\), this run makes 3"):
        with lens.trace(pipe, edits={site: lens.patch(two_images, batch=[0])}):
            pipe.sampler.generate(PROMPT, batch_size=3, num_steps=4, seed=0)
    with pytest.raises(ValueError, match=r"step 1 ran at timestep 888 in the source \(10 steps\) "
                                         r"and at 666 here \(4 steps\)"):
        with lens.trace(pipe, edits={site: lens.patch(ten_steps)}, steps=[0, 1]):
            generate(pipe, num_steps=4)
    # One image into chosen items is what causal tracing does: allowed.
    with lens.trace(pipe, edits={site: lens.patch(one_image, batch=[1])}):
        patched = pipe.sampler.generate(PROMPT, batch_size=3, num_steps=4, seed=0).images
    assert patched.shape[0] == 3


def test_the_record_estimate_is_what_the_records_hold_and_the_budget_is_checked_first(pipe):
    with lens.trace(pipe, record=["text.*", "res_block_*", "sampler.x0"], steps=[0, 2]) as tr:
        generate(pipe, num_steps=3, prompt=[PROMPT, "a bag"])
    assert tr.memory_bytes() == tr.record_estimate(2, 2) > 0
    calls = []
    tracer = lens.trace(pipe, record="all", max_record_bytes=10_000)
    tracer.begin = lambda *a, _begin=tracer.begin: calls.append(1) or _begin(*a)
    with pytest.raises(ValueError, match=r"recording \d+ site\(s\) for 1 image\(s\) x 3 step\(s\)"
                       r" .* above the budget of 0 MiB: .*max_record_bytes"):
        with tracer:
            generate(pipe, num_steps=3)
    assert calls == [1] and tracer.steps == []  # refused at begin: no step ran


@pytest.mark.parametrize("hook, error, message", [
    (lambda t: None, TypeError, r"hook <lambda> at site 'spatial_transformer_5.ff' returned None"),
    (lambda t: t[..., :3], ValueError, r"returned shape \(1, 8, 3\); the site carries "
                                       r"\(1, 8, 96\)"),
    (lambda t: tf.cast(t, tf.float16), TypeError, "returned float16; the site carries float32"),
    (lambda t: "x", TypeError, "returned str, not a tensor of float32"),
])
def test_bad_hook_results_name_the_hook_and_the_site(pipe, hook, error, message):
    with pytest.raises(error, match=message):
        with lens.trace(pipe, edits={"spatial_transformer_5.ff": hook}):
            generate(pipe, num_steps=1)


@pytest.mark.long  # 14 s
def test_a_numpy_result_is_taken_and_a_nan_edit_warns(pipe):
    shape = lens.list_sites(pipe)["spatial_transformer_5.ff"]
    with lens.trace(pipe, edits={"spatial_transformer_5.ff": lambda t: np.zeros((1,) + shape,
                                                                                 "float32")}):
        zeroed = generate(pipe, num_steps=2).images
    with lens.trace(pipe, edits={"spatial_transformer_5.ff": sites.scale(0.0)}):
        scaled = generate(pipe, num_steps=2).images
    np.testing.assert_array_equal(zeroed, scaled)
    with pytest.warns(RuntimeWarning, match=r"edits \(spatial_transformer_5.ff\) hold NaN"):
        with lens.trace(pipe, edits={"spatial_transformer_5.ff": sites.scale(float("nan"))}):
            generate(pipe, num_steps=1)
