"""SAE latents as sweep jobs: a shard = a range of latents (site "sae"), run as one batch.

    viz = SaeVizJob(steps=150)          # timestep-aware feature visualization of each latent
    edit = SaeEditJob(amplify=4.0)      # its best prompt generated as is, amplified, ablated
    run_sweep(viz, unit_shards(viz.name, viz.units(), 16), SweepFiles(run_dir).store(viz))

Both build a *profile* once per worker (`latent_profile`): the SAE's codes over a traced
generation of `profile_prompts` prompts (`sae.collect.training_prompts`, tiny; `prompts` to
give them), per latent the timestep where its mean code peaks (where the visualization
optimizes it: the thesis' timestep-aware feature visualization, `featureviz.render` with the
diffusion preset and `objectives.sae_feature`) and the prompt where it fires most (what the
preview generates). Deterministic, so every worker finds the same profile.

Shard arrays, n = the shard's latents:
- SaeVizJob: images uint8 (n, H, W, C), timestep (n,) int32, objective (steps, n) float32,
  fires (n,) bool (False: the latent never fired on the profile; its timestep is then step 0's);
- SaeEditJob: prompt_index (n,) int32 (into the profile prompts), peak (n,) float32 (the
  latent's peak code there), before, amplified, ablated uint8 (n, H, W, C) (the profile's noise of that prompt; the
  latent scaled by `amplify` / by 0 at the SAE's site, every step, the conditional half, through
  `lens.trace` with `sae.features.item_feature_edit`, the SAE's error kept), change_amplified,
  change_ablated (n,) float32: mean |pixel difference| to `before`, in 0..1.
A shard is padded to `batch_size` latents (one batch shape: one compiled step per worker).
"""

import dataclasses

import numpy as np

from keras_sd_interp.sweeps.jobs.activity import BUNDLED_SAE, SAE_SITE

_BUILT = {}  # the settings of a profile -> (pipe, sae, profile): built once per process


def latent_profile(pipe, sae, prompts, num_steps, guidance, seed):
    """Per latent (m,): peak_timestep int (its mean code's best step), best_prompt int (index
    into `prompts` of its highest code over steps and positions), peak float32 (that code);
    and noise (N, h, w, c): each prompt's initial latent, so that the preview regenerates a
    prompt from the very noise on which the latent fired. Encodes step by step, so memory is
    (N, h, w, m) at most."""
    from keras_sd_interp import lens
    from keras_sd_interp.sae.features import encode_tokens

    noise = np.asarray(pipe.sampler.initial_noise(len(prompts), seed), np.float32)
    with lens.trace(pipe, record=SAE_SITE, reduce=None) as trace:
        pipe.sampler.generate(list(prompts), num_steps=num_steps,
                              unconditional_guidance_scale=guidance, diffusion_noise=noise)
    acts = np.asarray(trace[SAE_SITE], np.float32)                       # (S, N, h, w, C)
    means, peaks = [], []
    for step_acts in acts:
        codes = encode_tokens(sae, step_acts)                            # (N, h, w, m)
        means.append(codes.mean(axis=(0, 1, 2)))
        peaks.append(codes.max(axis=(1, 2)))                              # (N, m)
    per_prompt = np.max(peaks, axis=0)                                   # (N, m)
    return {"peak_timestep": np.asarray(trace.timesteps)[np.argmax(means, axis=0)],
            "best_prompt": per_prompt.argmax(axis=0).astype(np.int32),
            "peak": per_prompt.max(axis=0).astype(np.float32), "noise": noise}


@dataclasses.dataclass(frozen=True)
class _SaeLatentJob:
    """The fields both jobs share: the pipeline (model, img_height, img_width, weights_dir,
    random_weights), the SAE (sae_path, None: the bundled tiny one), the profile
    (profile_prompts from training_prompts with prompt_seed, or `prompts`; num_steps, guidance,
    seed of its generation) and batch_size (every shard is padded to it)."""

    model: str = "tiny"
    img_height: int = None
    img_width: int = None
    weights_dir: str = None
    random_weights: bool = False
    sae_path: str = None
    profile_prompts: int = 16
    prompt_seed: int = 0
    prompts: tuple = None
    num_steps: int = 10
    guidance: float = 5.0
    seed: int = 0
    batch_size: int = 16

    def sae(self):
        if self.sae_path is None:
            if self.model != "tiny":
                raise ValueError(f"model={self.model!r} has no bundled SAE: give sae_path")
            return BUNDLED_SAE
        return self.sae_path

    def profile_prompt_list(self):
        if self.prompts is not None:
            return list(self.prompts)
        from keras_sd_interp.sae.collect import training_prompts

        return training_prompts(self.profile_prompts, self.prompt_seed)[0]

    def base_settings(self):
        return {"model": self.model, "img_height": self.img_height,
                "img_width": self.img_width, "random_weights": self.random_weights,
                "sae_path": self.sae(), "profile": self.profile_prompt_list(),
                "num_steps": self.num_steps, "guidance": self.guidance, "seed": self.seed}

    def units(self):
        """{"sae": number of latents}, from the SAE's file (no U-Net built)."""
        from keras_sd_interp.sae import load_sae

        return {"sae": load_sae(self.sae()).num_latents}

    def build_profile(self):
        """{"pipe", "sae", "profile"}, shared by the SAE jobs of one process (the viz and
        the preview sweeps of one atlas build one pipeline and one profile)."""
        from keras_sd_interp.models import load_pipeline
        from keras_sd_interp.sae import load_sae

        key = repr((self.base_settings(), self.weights_dir))
        if key not in _BUILT:
            pipe = load_pipeline(self.model, self.img_height, self.img_width,
                                 weights_dir=self.weights_dir,
                                 random_weights=self.random_weights)
            sae = load_sae(self.sae())
            profile = latent_profile(pipe, sae, self.profile_prompt_list(), self.num_steps,
                                     self.guidance, self.seed)
            _BUILT[key] = {"pipe": pipe, "sae": sae, "profile": profile}
        return dict(_BUILT[key])

    def padded(self, shard):
        """The shard's latents, then its first repeated up to batch_size: (list, n)."""
        if shard.site != "sae":
            raise ValueError(f"shard {shard.key}: SAE jobs take site 'sae' shards")
        latents = list(range(shard.start, shard.stop))
        return latents + [latents[0]] * max(0, self.batch_size - len(latents)), len(latents)


@dataclasses.dataclass(frozen=True)
class SaeVizJob(_SaeLatentJob):
    """Feature visualization of each latent at its peak timestep. preset: a
    `featureviz.render.VizSettings` preset ("diffusion"); steps: its optimization steps;
    context_prompt: the text the U-Net sees while optimizing ("" = the empty prompt)."""

    preset: str = "diffusion"
    steps: int = 150
    context_prompt: str = ""
    name: str = "sae_viz"

    def settings(self):
        return {**self.base_settings(), "preset": self.preset, "steps": self.steps,
                "context_prompt": self.context_prompt, "draws": "stateless"}

    def build(self):
        """The profile, the context, and one `render.Visualizer` whose objective reads the
        shard's latents from a tf.Variable: one compiled step for every shard, and a shard's
        images depend only on its latents (stateless draws), whichever worker runs it."""
        import tensorflow as tf

        from keras_sd_interp.featureviz import objectives as obj
        from keras_sd_interp.featureviz.render import Visualizer, VizSettings

        context = self.build_profile()
        text = np.asarray(context["pipe"].sampler.encode([self.context_prompt]), np.float32)
        latents = tf.Variable(tf.zeros(self.batch_size, tf.int32), trainable=False)
        objective = obj.item_sae_features(SAE_SITE, context["sae"], latents)
        settings = VizSettings.preset(self.preset, steps=self.steps, seed=self.seed)
        visualizer = Visualizer(context["pipe"].diffusion_model, objective, settings,
                                self.batch_size, stateless=True)
        return {**context, "context": np.repeat(text, self.batch_size, axis=0),
                "latents": latents, "visualizer": visualizer}

    def run(self, context, shard):
        """Visualizes the shard's latents as one batch (see the module doc)."""
        from keras_sd_interp.featureviz import decode_to_uint8

        latents, n = self.padded(shard)
        pipe, profile = context["pipe"], context["profile"]
        context["latents"].assign(np.asarray(latents, np.int32))
        timesteps = profile["peak_timestep"][latents]
        result = context["visualizer"].run(timesteps=timesteps, context=context["context"])
        images = decode_to_uint8(pipe.decoder, result.latents[:n], "corrected")
        return {"images": images, "timestep": timesteps[:n].astype(np.int32),
                "objective": result.objective[:, :n].astype(np.float32),
                "fires": profile["peak"][latents[:n]] > 0}


@dataclasses.dataclass(frozen=True)
class SaeEditJob(_SaeLatentJob):
    """The amplify / ablate preview: each latent's best profile prompt generated as is, with
    the latent times `amplify`, and with it zeroed (see the module doc)."""

    amplify: float = 4.0
    name: str = "sae_edit"

    def settings(self):
        return {**self.base_settings(), "amplify": self.amplify, "noise": "profile"}

    def build(self):
        import tensorflow as tf

        from keras_sd_interp.sae.features import item_feature_edit

        context = self.build_profile()
        factor = tf.Variable(tf.ones((self.batch_size, context["sae"].num_latents)))
        return {**context, "factor": factor,
                "edit": item_feature_edit(context["sae"], factor)}

    def _generate(self, context, prompts, noise, latents, scale):
        from keras_sd_interp import lens

        factor = np.ones(context["factor"].shape, np.float32)
        factor[np.arange(len(latents)), latents] = scale
        context["factor"].assign(factor)
        with lens.trace(context["pipe"], edits={SAE_SITE: context["edit"]}):
            generation = context["pipe"].sampler.generate(
                prompts, num_steps=self.num_steps, unconditional_guidance_scale=self.guidance,
                diffusion_noise=noise)
        return generation.uint8()

    def run(self, context, shard):
        """Three generations of the shard's prompts, each from its profile noise: scale 1,
        amplify, 0."""
        latents, n = self.padded(shard)
        profile = context["profile"]
        index = profile["best_prompt"][latents]
        everything = self.profile_prompt_list()
        prompts = [everything[i] for i in index]
        noise = profile["noise"][index]
        before, amplified, ablated = (self._generate(context, prompts, noise, latents, scale)[:n]
                                      for scale in (1.0, self.amplify, 0.0))

        def change(images):
            return (np.abs(images.astype(np.float32) - before).mean(axis=(1, 2, 3))
                    / 255).astype(np.float32)

        return {"prompt_index": index[:n].astype(np.int32),
                "peak": profile["peak"][latents[:n]], "before": before,
                "amplified": amplified, "ablated": ablated,
                "change_amplified": change(amplified), "change_ablated": change(ablated)}
