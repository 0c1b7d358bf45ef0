"""DAAM's array math: attention, upscaling, aggregation, rollout, masks. Pure functions on
arrays (no model, no trace); shapes in each docstring."""

import numpy as np
import tensorflow as tf

DEFAULT_TAU = 0.4


def attention_probs(q, k, num_heads):
    """softmax(Q K^T / sqrt(d)) per head, as the U-Net computes it.

    q: (..., queries, heads*d); k: (..., keys, heads*d) -> (..., heads, queries, keys).
    """
    q, k = tf.convert_to_tensor(q, tf.float32), tf.convert_to_tensor(k, tf.float32)
    d = q.shape[-1] // num_heads
    qh = tf.reshape(q, tf.concat([tf.shape(q)[:-1], [num_heads, d]], 0))
    kh = tf.reshape(k, tf.concat([tf.shape(k)[:-1], [num_heads, d]], 0))
    rank = len(q.shape)
    perm = list(range(rank - 2)) + [rank - 1, rank - 2, rank]  # (..., heads, n, d)
    qh, kh = tf.transpose(qh, perm), tf.transpose(kh, perm)
    logits = tf.matmul(qh, kh, transpose_b=True) * (d ** -0.5)
    return tf.nn.softmax(logits, axis=-1)


@tf.function(reduce_retracing=True, autograph=False)
def _upscale(maps, size, clamp):
    """maps (N, h, w, C) -> bicubic (N, H, W, C), clamped at zero when `clamp`. One compiled
    call per batch of maps (all layers of a resolution, all heads, all tokens)."""
    up = tf.image.resize(maps, size, method="bicubic")
    return tf.maximum(up, 0.0) if clamp else up


def map_grid(num_queries, latent_hw):
    """(h, w) of a map with `num_queries` positions on a latent of (lh, lw), and its factor."""
    lh, lw = latent_hw
    factor = int(round(np.sqrt(lh * lw / num_queries)))
    if factor < 1 or (lh // factor) * (lw // factor) != num_queries:
        raise ValueError(f"{num_queries} positions do not tile the latent {latent_hw}")
    return lh // factor, lw // factor, factor


def group_weights(groups, num_tokens):
    """(num_tokens, G) weights of DAAM's sub-token average: column g is 1/len(group) on the
    tokens of groups[g]."""
    weights = np.zeros((num_tokens, len(groups)), np.float32)
    for g, group in enumerate(groups):
        for t in group:
            weights[t, g] += 1.0 / len(group)
    return weights


def attention_rollout(probs):
    """Attention rollout through a text encoder (Abnar & Zuidema, 2020).

    probs: list over layers (first to last) of (heads, L, L) self-attention probabilities.
    Returns R (L, L) float64, R = A~_last ... A~_first with A~ = 0.5 mean_heads(A) + 0.5 I:
    row j says how much of output token j comes from each input token (rows sum to 1).
    """
    rollout = None
    for layer_probs in probs:
        a = np.asarray(layer_probs, np.float64).mean(0)
        a = 0.5 * a + 0.5 * np.eye(len(a))
        a /= a.sum(-1, keepdims=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def aggregate(maps, latent_hw, image_hw, groups, clamp=True, weights=None):
    """DAAM's per-(layer, head) word maps from attention summed over steps.

    Args:
        maps: list over layers of arrays (..., heads, h*w, tokens) (leading axes: images,
            or steps and images), each layer at its own resolution.
        latent_hw, image_hw: (h, w) of the latent and of the image.
        groups: list of token-index lists (one per word: its sub-tokens, averaged).
        clamp: clamp each upscaled map at zero (DAAM); False keeps the maps linear.
        weights: optional (tokens, G) token weights of each word, used instead of `groups`
            (text rollout: column g = the rollout's share of word g in each token).

    Returns:
        float32 (layers, ..., heads, words, H, W): each token map upscaled bicubically to the
        image, clamped, then averaged over the word's tokens. Averaging over heads and layers is
        left to the caller (`HeatMaps`), so one call serves global, per-layer and per-head maps.
    """
    if weights is None:
        weights = group_weights(groups, maps[0].shape[-1])
    needed = [int(t) for t in np.flatnonzero(np.abs(weights).sum(1))]
    weights = np.asarray(weights, np.float32)[needed]
    by_grid = {}
    for index, layer_maps in enumerate(maps):
        h, w, _ = map_grid(layer_maps.shape[-2], latent_hw)
        by_grid.setdefault((h, w), []).append(index)
    out = [None] * len(maps)
    for (h, w), indices in by_grid.items():
        stack = np.stack([np.asarray(maps[i])[..., needed] for i in indices])  # (L, ..., hw, T')
        lead = stack.shape[:-2]
        x = tf.reshape(tf.constant(stack, tf.float32), (-1, h, w, len(needed)))
        up = _upscale(x, tf.constant(image_hw, tf.int32), clamp)           # (N, H, W, T')
        words = tf.einsum("nhwt,tg->nghw", up, tf.constant(weights))        # (N, G, H, W)
        words = tf.reshape(words, lead + (weights.shape[1],) + tuple(image_hw)).numpy()
        for j, i in enumerate(indices):
            out[i] = words[j]
    return np.stack(out)


def check_tau(tau):
    """tau as a float in [0, 1]; ValueError otherwise."""
    if isinstance(tau, bool) or not isinstance(tau, (int, float, np.floating)) \
            or not 0.0 <= float(tau) <= 1.0:
        raise ValueError(f"tau={tau!r}: use a number in [0, 1] (the threshold on the "
                         f"min-max-normalised map; DAAM's default is {DEFAULT_TAU})")
    return float(tau)


def normalize(heat_map):
    """Min-max normalisation to [0, 1] over the last two axes: (..., H, W) -> float32."""
    m = np.asarray(heat_map, np.float32)
    low = m.min(axis=(-2, -1), keepdims=True)
    return (m - low) / np.maximum(m.max(axis=(-2, -1), keepdims=True) - low, 1e-12)


def mask(heat_map, tau=DEFAULT_TAU):
    """Binary mask: the min-max-normalised map above tau. heat_map (..., H, W) -> bool."""
    tau = check_tau(tau)
    return normalize(heat_map) > tau
