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
with the settings it was started with. `ShardPlan` and `record_batch` (one shard's generation,
no files) live in `sae.collect`; the same shards made by the sweep runner, in-process or on Ray,
are `sweeps.jobs.sae_collect.SaeCollectJob`, and `shard_files` / `shard_dataset` read both.
SD 1.4 at 512 px: spatial_transformer_8 is 16 x 16 positions of 1280 channels, 1.3 MB per image
and step in float32.
"""

import glob
import os

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_sd_interp import io, lens
from keras_sd_interp.sae.collect import DTYPES, ShardPlan, record_batch  # noqa: F401 (moved)
from keras_sd_interp.training.run_settings import check_run_settings

SHARD_PATTERN = "shard_{:05d}.npz"
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
    """The shard files of `folder`, in shard order: `shard_*.npz` (`collect_shards`), else the
    sweep runner's layout (`shards/<job>/prompts_*.npz`, `sweeps.jobs.sae_collect`)."""
    files = sorted(glob.glob(os.path.join(folder, "shard_*.npz")))
    return files or sorted(glob.glob(os.path.join(folder, "shards", "*", "prompts_*.npz")))


def shard_layout(folder):
    """Which writer made `folder`'s shards: "collect_shards" (`shard_*.npz`), "sweep" (the
    sweep runner's `shards/<job>/prompts_*.npz`), or None (no shard yet)."""
    if glob.glob(os.path.join(folder, "shard_*.npz")):
        return "collect_shards"
    if glob.glob(os.path.join(folder, "shards", "*", "prompts_*.npz")):
        return "sweep"
    return None


def engine_problem(folder, engine):
    """None when `engine` ("inprocess" or "ray") can resume the shards in `folder`, else why
    not: the in-process collection and the sweep runner lay their files out differently."""
    layout = shard_layout(folder)
    wanted = "sweep" if engine == "ray" else "collect_shards"
    if layout in (None, wanted):
        return None
    other = "inprocess" if layout == "collect_shards" else "ray"
    return (f"--engine={engine}: {folder} holds shards collected with --engine={other}; "
            f"resume with --engine={other} or give a new --run_dir")


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
