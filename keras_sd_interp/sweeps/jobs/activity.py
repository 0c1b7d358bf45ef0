"""What every unit does on a generated prompt set, as a sweep job: a shard = a prompt range.

    job = ActivityJob(num_prompts=64, num_steps=10)
    run_sweep(job, prompt_shards(job.name, job.num_prompts, 8), SweepFiles(run_dir).store(job))

Each shard generates its prompts once (one batch, `lens.trace` recording every conv and the SAE's
site at every step, conditional half) and keeps, per conv k and unit c (arrays named "k.<name>",
and "sae.<name>" for the SAE's latents):
- peak (n, c) float32: the maximum over steps and positions; peak_step, peak_pos (n, c) int16:
  where it is (step index, row-major position);
- maps (n, c, h, w) float16: the unit's map at its peak step (the atlas's heat map);
- mean (S, n, c) float32: the mean over positions at each step (activity over timesteps);
- for the SAE only, token_peak (n, h, w, m) float16: each position's peak over steps (class
  selectivity over (image, position) pairs, as `sae.features.class_selectivity`).
Plus images uint8 (n, H, W, C), prompt_index (n,) and timesteps (S,). Streaming top-k over shards
is `atlas.summaries`.
"""

import dataclasses
import os

import numpy as np

from keras_sd_interp.lens.taps import NUM_CONVS

SAE_SITE = "spatial_transformer_8"
BUNDLED_SAE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                           "assets", "sae", "tiny_st8.npz")


def unit_summary(acts):
    """acts (S, n, h, w, c) -> dict of peak, peak_step, peak_pos, maps, mean (see module doc)."""
    steps, n, h, w, c = acts.shape
    flat = acts.reshape(steps, n, h * w, c)
    over_positions = flat.max(axis=2)                                # (S, n, c)
    peak_step = over_positions.argmax(axis=0)                        # (n, c)
    at_peak = np.take_along_axis(flat, peak_step[None, :, None, :], axis=0)[0]  # (n, hw, c)
    return {"peak": over_positions.max(axis=0), "peak_step": peak_step.astype(np.int16),
            "peak_pos": at_peak.argmax(axis=1).astype(np.int16),
            "maps": np.moveaxis(at_peak, 1, 2).reshape(n, c, h, w).astype(np.float16),
            "mean": flat.mean(axis=2)}


@dataclasses.dataclass(frozen=True)
class ActivityJob:
    """Attributes: model, weights_dir, random_weights (the pipeline); num_prompts and
    prompt_seed (`sae.collect.training_prompts`); img_height, img_width (None: the
    preset's); num_steps, guidance, seed (generation: a shard
    starting at prompt p uses seed + p); sae_path (None: the bundled SAE on tiny, none on sd14;
    "" for none)."""

    model: str = "tiny"
    num_prompts: int = 64
    prompt_seed: int = 0
    num_steps: int = 10
    guidance: float = 5.0
    seed: int = 0
    sae_path: str = None
    img_height: int = None
    img_width: int = None
    weights_dir: str = None
    random_weights: bool = False
    name: str = "activity"

    def settings(self):
        return {"model": self.model, "num_prompts": self.num_prompts,
                "prompt_seed": self.prompt_seed, "num_steps": self.num_steps,
                "guidance": self.guidance, "seed": self.seed, "sae_path": self.sae(),
                "img_height": self.img_height, "img_width": self.img_width,
                "random_weights": self.random_weights}

    def sae(self):
        if self.sae_path is None:
            return BUNDLED_SAE if self.model == "tiny" else ""
        return self.sae_path

    def prompts(self):
        """(prompts list of N strings, left classes (N,), right classes (N,), -1: single)."""
        from keras_sd_interp.sae.collect import training_prompts

        return training_prompts(self.num_prompts, self.prompt_seed)

    def build(self):
        from keras_sd_interp.lens import taps
        from keras_sd_interp.models import load_pipeline
        from keras_sd_interp.sae import load_sae

        pipe = load_pipeline(self.model, self.img_height, self.img_width,
                             weights_dir=self.weights_dir,
                             random_weights=self.random_weights)
        sites = [entry.name for entry in taps.conv_inventory(pipe.diffusion_model)]
        sae = load_sae(self.sae()) if self.sae() else None
        return {"pipe": pipe, "sites": sites, "sae": sae}

    def run(self, context, shard):
        from keras_sd_interp import lens
        from keras_sd_interp.sae.features import encode_tokens

        pipe, sites, sae = context["pipe"], context["sites"], context["sae"]
        prompts = self.prompts()[0][shard.start:shard.stop]
        record = sites + ([SAE_SITE] if sae is not None else [])
        with lens.trace(pipe, record=record, reduce=None) as trace:
            generation = pipe.sampler.generate(prompts, num_steps=self.num_steps,
                                               unconditional_guidance_scale=self.guidance,
                                               seed=self.seed + shard.start)
        arrays = {"images": generation.uint8(), "timesteps": np.asarray(trace.timesteps),
                  "prompt_index": np.arange(shard.start, shard.stop)}
        for k in range(NUM_CONVS):
            summary = unit_summary(np.asarray(trace[sites[k]], np.float32))
            arrays.update({f"{k}.{name}": value for name, value in summary.items()})
        if sae is not None:
            codes = encode_tokens(sae, np.asarray(trace[SAE_SITE], np.float32))
            arrays.update({f"sae.{name}": value for name, value in unit_summary(codes).items()})
            arrays["sae.token_peak"] = codes.max(axis=0).astype(np.float16)
        return arrays
