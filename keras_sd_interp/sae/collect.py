"""U-Net activations collected while generating, for training and reading an SAE.

The default site is SAeUron's: SD 1.4's `up_blocks.1.attentions.1` (diffusers numbering) is
`spatial_transformer_8` here (the second transformer of the first up block that has attention,
counting 0..5 down, 6 middle, 7..15 up). Each spatial position of each (step, image) is one
token of width C (tiny: 2 x 4 positions x 96 channels; SD 1.4 at 512: 16 x 16 x 1280).
"""

import dataclasses

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


DTYPES = ("float16", "float32")


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    """What one collection records.

    site: the U-Net site; num_steps, guidance: the sampler's; steps: step indices kept (None:
    all); positions: positions kept per (image, step), drawn without replacement (None: all);
    batch_size: prompts per shard; seed: noise seed of shard 0 (shard b: seed + b); dtype:
    "float16" or "float32" on disk."""

    site: str = "spatial_transformer_8"
    num_steps: int = 25
    steps: tuple = None
    guidance: float = 5.0
    positions: int = None
    batch_size: int = 8
    seed: int = 0
    dtype: str = "float32"

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r}: use one of {DTYPES}")
        if self.steps is not None:
            steps = tuple(int(s) for s in self.steps)
            bad = [s for s in steps if not 0 <= s < self.num_steps]
            if bad or not steps:
                raise ValueError(f"steps {list(steps)}: give step indices in "
                                 f"0..{self.num_steps - 1}")
            object.__setattr__(self, "steps", steps)
        if self.positions is not None and self.positions < 1:
            raise ValueError(f"positions={self.positions}: give None (all) or >= 1")

    def kept_steps(self):
        return self.steps if self.steps is not None else tuple(range(self.num_steps))

    def estimate_bytes(self, num_prompts, grid, width):
        """Bytes on disk for `num_prompts` prompts at a site of `grid` (h, w) x `width`."""
        per_step = min(self.positions or grid[0] * grid[1], grid[0] * grid[1])
        bytes_per = np.dtype(self.dtype).itemsize * width + 3 * 4
        return int(num_prompts) * len(self.kept_steps()) * per_step * bytes_per

    def settings(self, num_prompts):
        """The settings a shard folder records (`training.run_settings`)."""
        return {**dataclasses.asdict(self), "steps": list(self.kept_steps()),
                "num_prompts": int(num_prompts)}


def _subsample(acts, positions, rng):
    """acts (S, n, h, w, C) -> tokens (S*n*p, C) and their (image, step slot, position) ids.

    p = positions (or h * w): for every (step, image) the same number of distinct positions."""
    s, n, h, w, c = acts.shape
    flat = acts.reshape(s, n, h * w, c)
    if positions is None or positions >= h * w:
        chosen = np.broadcast_to(np.arange(h * w), (s, n, h * w))
    else:
        chosen = np.argsort(rng.random((s, n, h * w)), axis=-1)[..., :positions]
        chosen = np.sort(chosen, axis=-1)
    p = chosen.shape[-1]
    tokens = np.take_along_axis(flat, chosen[..., None], axis=2).reshape(-1, c)
    slot = np.broadcast_to(np.arange(s)[:, None, None], (s, n, p)).ravel()
    image = np.broadcast_to(np.arange(n)[None, :, None], (s, n, p)).ravel()
    return tokens, image, slot, chosen.ravel()


def _check_finite(acts, prompts, kept):
    bad = ~np.isfinite(acts).all(axis=(2, 3, 4))                       # (S, n)
    if bad.any():
        slot, image = np.argwhere(bad)[0]
        raise FloatingPointError(
            f"non-finite activation (NaN or inf) at step {kept[slot]} of prompt "
            f"{prompts[image]!r}: nothing written for its shard; check the model's weights")


def record_batch(pipe, prompts, plan, batch_index):
    """Generates one shard's prompts and records the plan's site.

    Returns dict of tokens (n, C) in plan.dtype and int32 image (into `prompts`), step and
    position (n,)."""
    kept = plan.kept_steps()
    with lens.trace(pipe, record=plan.site, steps=list(kept), reduce=None) as tr:
        pipe.sampler.generate(list(prompts), batch_size=1, num_steps=plan.num_steps,
                              unconditional_guidance_scale=plan.guidance,
                              seed=plan.seed + batch_index)
    acts = np.asarray(tr[plan.site], np.float32)                       # (S, n, h, w, C)
    if acts.ndim != 5:
        raise ValueError(f"site {plan.site!r} records {acts.shape[1:]}: shards need a (h, w, C) "
                         "site of the U-Net")
    _check_finite(acts, prompts, kept)
    rng = np.random.default_rng([plan.seed, batch_index])
    tokens, image, slot, position = _subsample(acts, plan.positions, rng)
    return {"tokens": tokens.astype(plan.dtype), "image": image.astype(np.int32),
            "step": np.asarray(kept, np.int32)[slot], "position": position.astype(np.int32)}
