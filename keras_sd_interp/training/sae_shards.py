"""SAE activations streamed to sharded files on disk, and read back with tf.data.

    plan = ShardPlan(site="spatial_transformer_8", num_steps=25, steps=range(0, 25, 5),
                     positions=64, batch_size=4, seed=0)
    check_budget(plan.estimate_bytes(num_prompts, grid=(16, 16), width=1280), max_bytes=2e9)
    collect_shards(pipe, prompts, "runs/sae/acts", plan)     # shard_00000.npz, ... (resumes)
    dataset = shard_dataset("runs/sae/acts", batch_size=4096, seed=0)   # (4096, C) batches

One shard per batch of `batch_size` prompts: batch b is generated with seed `seed + b` and its
positions are drawn with the generator `[seed, b]`, so a shard's content depends only on b. Each
shard is written atomically; a resumed collection skips the shards that exist and makes the
missing ones, so it neither repeats nor skips a token. A shard holds
    tokens (n, C) float16 or float32 (the site's output, conditional half)
    prompt (n,) int32 (index into the prompts), step (n,) int32 (sampler step index),
    position (n,) int32 (row * w + col in the site's h x w grid)
and the folder a `settings.json` (`training.run_settings`) so that a folder is resumed only
with the settings it was started with. SD 1.4 at 512 px: spatial_transformer_8 is 16 x 16
positions of 1280 channels, 1.3 MB per image and step in float32.
"""

import dataclasses
import glob
import os

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_sd_interp import io, lens
from keras_sd_interp.training.run_settings import check_run_settings

SHARD_PATTERN = "shard_{:05d}.npz"
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


def check_budget(num_bytes, max_bytes, flag="max_gb"):
    """Raises ValueError when `num_bytes` exceeds `max_bytes`, naming the numbers and `--flag`."""
    if num_bytes > max_bytes:
        raise ValueError(
            f"the activations would take {num_bytes / 1e9:.3g} GB on disk, above the budget "
            f"--{flag}={max_bytes / 1e9:g}: raise --{flag}, or keep fewer steps / positions / "
            "prompts")


def shard_path(folder, index):
    return os.path.join(folder, SHARD_PATTERN.format(index))


def shard_files(folder):
    """The shard files of `folder`, in shard order."""
    return sorted(glob.glob(os.path.join(folder, "shard_*.npz")))


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


def write_shard(path, arrays):
    """Writes one shard (.npz) atomically."""
    with io.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def read_shard(path):
    """dict of a shard's arrays: tokens (n, C), prompt, step, position (n,)."""
    try:
        with np.load(path) as arrays:
            return {name: arrays[name] for name in ("tokens", "prompt", "step", "position")}
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: not a complete activation shard (an .npz with tokens, "
                         f"prompt, step, position): {error}") from error


def collect_shards(pipe, prompts, folder, plan, max_bytes=None, progress=True,
                   max_shards=None):
    """Streams `plan.site`'s activations for `prompts` into `folder`, one shard per batch.

    Shards that exist are kept (a resumed run makes only the missing ones); the folder's
    settings must match `plan` and the number of prompts (ValueError naming the setting).
    Args:
        max_bytes: refuse (ValueError) before generating when the estimate is above it.
        max_shards: stop after making this many new shards (None: all).
    Returns:
        list of the shard paths, in order.
    """
    shape = lens.list_sites(pipe).get(plan.site)
    if shape is None or len(shape) != 3:
        raise ValueError(f"site {plan.site!r} has shape {shape}: give a (h, w, C) U-Net site")
    if max_bytes is not None:
        check_budget(plan.estimate_bytes(len(prompts), shape[:2], shape[2]), max_bytes)
    check_run_settings(folder, plan.settings(len(prompts)))
    starts = list(range(0, len(prompts), plan.batch_size))
    made = 0
    for b in tqdm(range(len(starts)), desc=f"shards {plan.site}", disable=not progress):
        path = shard_path(folder, b)
        if os.path.exists(path):
            continue
        if max_shards is not None and made >= max_shards:
            break
        chunk = prompts[starts[b]:starts[b] + plan.batch_size]
        arrays = record_batch(pipe, chunk, plan, b)
        arrays["prompt"] = arrays.pop("image") + starts[b]
        write_shard(path, arrays)
        made += 1
    return [shard_path(folder, b) for b in range(len(starts))
            if os.path.exists(shard_path(folder, b))]


def _load_tokens(path):
    with np.load(path.decode()) as arrays:
        return np.asarray(arrays["tokens"], np.float32)


def shard_dataset(folder, batch_size, seed=0, shuffle_buffer=65536):
    """An endless tf.data.Dataset of (batch_size, C) float32 token batches from `folder`.

    Shards are visited in a seeded shuffled order each pass, tokens shuffled in a buffer of
    `shuffle_buffer`. Its iterator can be saved in a tf.train.Checkpoint, so a resumed training
    continues the same stream (the reading function is pure: its state need not be saved)."""
    files = shard_files(folder)
    if not files:
        raise ValueError(f"no shard_*.npz in {folder!r}: collect activations first")
    width = read_shard(files[0])["tokens"].shape[1]
    data = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed).repeat()
    data = data.map(lambda p: tf.ensure_shape(tf.numpy_function(_load_tokens, [p], tf.float32),
                                              (None, width)))
    data = data.unbatch().shuffle(shuffle_buffer, seed=seed + 1).batch(batch_size,
                                                                       drop_remainder=True)
    options = tf.data.Options()
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    return data.with_options(options).prefetch(2)


def sample_tokens(folder, num, seed=0):
    """Up to `num` tokens drawn (seeded) from the shards of `folder`: (num, C) float32, for the
    geometric median and evaluation without loading every shard at once."""
    files = shard_files(folder)
    rng = np.random.default_rng(seed)
    per_file = max(1, -(-num // len(files)))
    parts = []
    for path in files:
        tokens = read_shard(path)["tokens"]
        take = rng.choice(len(tokens), min(per_file, len(tokens)), replace=False)
        parts.append(np.asarray(tokens[np.sort(take)], np.float32))
    return np.concatenate(parts)[:num]


def transformer_site_shape(config, img_height, img_width, site):
    """(h, w, C) of `spatial_transformer_N` from the U-Net's config alone (no model), for the
    size estimate before a model is built; None for other sites. Transformers 0..5 sit two per
    down level, 6 in the middle, 7..15 three per up level (SD 1.4 at 512: st_8 is 16 x 16 x
    1280; tiny at 32 x 64: 2 x 4 x 96)."""
    prefix = "spatial_transformer_"
    if not site.startswith(prefix) or not site[len(prefix):].isdigit():
        return None
    index = int(site[len(prefix):])
    levels = [0, 0, 1, 1, 2, 2, 3, 2, 2, 2, 1, 1, 1, 0, 0, 0]
    if index >= len(levels):
        return None
    level = levels[index]
    scale = config.latent_factor * 2 ** level
    return img_height // scale, img_width // scale, config.channels[min(level, 2)]
