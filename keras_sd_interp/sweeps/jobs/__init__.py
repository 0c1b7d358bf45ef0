"""Jobs for the sweep runner (`sweeps.run_sweep`).

- `filters.FilterVizJob`: feature visualization of every filter (corrected descent or ascent,
  or the paper's mode), a shard = one conv's unit range, optimized as one batch;
- `activity.ActivityJob`: generations of a prompt range, recording every conv (and an SAE's
  latents) at every step: per-unit maxima with image, position and step, means per step;
- `sae_latents.SaeVizJob` / `SaeEditJob`: per SAE latent (a shard = a latent range), its
  timestep-aware feature visualization / its amplify-ablate preview through the lens;
- `sae_collect.SaeCollectJob`: SAE activation collection, a shard = one batch of prompts;
- `probe.ProbeJob`: a job with no model (NumPy work of a set length), for the engines' tests
  and overhead benchmarks, and to kill a worker mid-shard on purpose.
"""
