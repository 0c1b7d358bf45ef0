"""Reading one SAE latent: where it fires, on what, when, and what it does when scaled.

    codes = latent_codes(sae, data["activations"])          # (S, N, h, w, m)-shaped, chunked
    top = top_examples(sae, data["activations"], latent=7)  # images and positions, best first
    fmap = feature_map(sae, data["activations"][:, i], 7)   # (S, h, w) over one image's steps
    with lens.trace(pipe, edits={DEFAULT_SITE: feature_edit(sae, 7, scale=0.0)}):  # ablate
        ...

All functions take activations as `collect` returns them: (S, N, h, w, C) = (steps, images,
rows, columns, channels). Codes are the per-token top-k `sae.encode`.
"""

import math

import numpy as np
import tensorflow as tf

from keras_sd_interp.indices import check_indices


def encode_tokens(sae, activations, latents=None, chunk=8192):
    """Codes of every token of `activations` (..., C) -> (..., m), or (..., len(latents)) for
    the listed latents, in chunks (NumPy float32). ValueError for activations of another
    width than the SAE's d_in, or a latent outside 0..m-1."""
    activations = np.asarray(activations, np.float32)
    if activations.shape[-1] != sae.d_in:
        raise ValueError(f"activations of width {activations.shape[-1]} (shape "
                         f"{activations.shape}); this SAE reads d_in={sae.d_in} channels")
    if latents is not None:
        latents = check_indices("latent", latents, sae.num_latents)
    flat = activations.reshape(-1, activations.shape[-1])
    out = []
    for start in range(0, len(flat), chunk):
        z = sae.encode(tf.constant(flat[start:start + chunk])).numpy()
        out.append(z if latents is None else z[:, latents])
    width = sae.num_latents if latents is None else len(latents)
    return np.concatenate(out).reshape(activations.shape[:-1] + (width,))


def image_scores(sae, activations):
    """Each image's peak code of each latent over steps and positions: (N, m)."""
    best = None
    for s in range(activations.shape[0]):
        z = encode_tokens(sae, activations[s]).max(axis=(1, 2))          # (N, m)
        best = z if best is None else np.maximum(best, z)
    return best


def token_peaks(sae, activations, latents):
    """Peak over steps of each position's code for `latents`: (N, h, w, len(latents))."""
    latents = np.atleast_1d(latents)
    return encode_tokens(sae, activations, latents).max(axis=0)


def top_examples(sae, activations, latent, num=8):
    """The `num` (image, row, column) where `latent` fires most (peak over steps).

    Returns dict of arrays (num,): image, row, col, step (the step of the peak), value."""
    codes = encode_tokens(sae, activations, [latent])[..., 0]             # (S, N, h, w)
    peak = codes.max(axis=0)                                              # (N, h, w)
    order = np.argsort(-peak.ravel(), kind="stable")[:num]
    image, row, col = np.unravel_index(order, peak.shape)
    step = codes[:, image, row, col].argmax(axis=0)
    return {"image": image, "row": row, "col": col, "step": step,
            "value": peak.ravel()[order]}


def feature_map(sae, activations, latent):
    """One image's map of `latent`: activations (S, h, w, C) -> (S, h, w) codes."""
    return encode_tokens(sae, activations, [latent])[..., 0]


def timestep_scores(sae, activations, latent):
    """Per-step activity of `latent`: dict of (S,) arrays mean (over images and positions) and
    max, and fire (share of tokens with a non-zero code)."""
    codes = encode_tokens(sae, activations, [latent])[..., 0]             # (S, N, h, w)
    flat = codes.reshape(codes.shape[0], -1)
    return {"mean": flat.mean(1), "max": flat.max(1), "fire": (flat > 0).mean(1)}


def position_classes(left, right, width):
    """Prompted class of each column of the site's grid: (N, width); the left half of the
    columns gets `left`, the right half `right` (-1 for single prompts: then all `left`)."""
    left, right = np.asarray(left), np.asarray(right)
    right = np.where(right < 0, left, right)
    half = np.arange(width) < width // 2
    return np.where(half[None, :], left[:, None], right[:, None])


def class_selectivity(sae, activations, left, right, num_top=16, chunk_latents=None):
    """For every latent, the prompted classes of its `num_top` strongest (image, position)
    peaks: returns dict with `class_` (m,) the modal class, `share` (m,) its share of the top
    examples, `peak` (m,) the strongest code (0: never fires on these data)."""
    peaks = token_peaks(sae, activations, np.arange(sae.num_latents))     # (N, h, w, m)
    n, h, w, m = peaks.shape
    classes = np.broadcast_to(position_classes(left, right, w)[:, None, :], (n, h, w)).ravel()
    flat = peaks.reshape(-1, m)
    top = np.argsort(-flat, axis=0, kind="stable")[:num_top]             # (num_top, m)
    top_classes = classes[top]                                            # (num_top, m)
    counts = np.stack([(top_classes == c).sum(0) for c in range(10)])      # (10, m)
    return {"class_": counts.argmax(0), "share": counts.max(0) / num_top,
            "peak": flat.max(0)}


def _code_edit(sae, scale_codes):
    """The lens edit x -> decode(scale_codes(z)) + (x - decode(z)), z = encode(x) shaped
    (B, T, m) for a (B, ..., C) tensor (T: its positions)."""

    def edit(tensor, where=None):
        shape = tf.shape(tensor)
        x = tf.reshape(tensor, (-1, tensor.shape[-1]))
        z = sae.encode(x)
        error = x - sae.decode(z)
        scaled = scale_codes(tf.reshape(z, (shape[0], -1, z.shape[-1])))
        return tf.reshape(sae.decode(tf.reshape(scaled, tf.shape(z))) + error, shape)

    return edit


def feature_edit(sae, latents, scale):
    """A lens edit that scales SAE latent(s) at the site it is put on, keeping the SAE's error.

    x -> decode(z') + (x - decode(z)), z = encode(x), z' = z with `latents` multiplied by
    `scale` (0 ablates, > 1 amplifies), so scale 1 returns x (up to float rounding).
    Works on any (batch, ..., C) tensor. ValueError for a latent outside 0..m-1 (a negative
    one would pick from the end) or a non-finite scale."""
    latents = check_indices("latent", latents, sae.num_latents)
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.number)) \
            or not math.isfinite(scale):
        raise ValueError(f"scale={scale!r}: give a finite number (0 ablates, 1 keeps, > 1 "
                         "amplifies)")
    mask = np.zeros(sae.num_latents, np.float32)
    mask[latents] = 1.0
    factor = tf.constant(1.0 + (float(scale) - 1.0) * mask)
    return _code_edit(sae, lambda z: z * factor)


def item_feature_edit(sae, factor):
    """A lens edit that scales latents item by item: item i's codes are multiplied by
    `factor[i]` ((B, m): a tf.Variable reuses one compiled step across calls; or a tensor),
    keeping the SAE's error as `feature_edit` does. The edited tensor is (B, ..., C), B the
    factor's rows (the half the trace edits: with guidance, the conditional half's prompts)."""
    return _code_edit(sae, lambda z: z * tf.expand_dims(factor, 1))


def splice(sae):
    """A lens edit that replaces the site's tensor with the SAE's reconstruction (no error
    term): how much the generation depends on what the SAE misses."""

    def edit(tensor, where=None):
        x = tf.reshape(tensor, (-1, tensor.shape[-1]))
        return tf.reshape(sae(x), tf.shape(tensor))

    return edit


def peak_timestep(sae, activations, timesteps, latent):
    """The timestep (of `timesteps` (S,)) where `latent`'s mean code over a traced generation
    is highest: where the diffusion preset optimizes it by default."""
    if len(timesteps) != np.shape(activations)[0]:
        raise ValueError(f"{len(timesteps)} timesteps for activations of {np.shape(activations)[0]}"
                         " steps: give one timestep per recorded step (collect's 'timesteps')")
    return int(np.asarray(timesteps)[timestep_scores(sae, activations, latent)["mean"].argmax()])
