"""Objectives (lucent's): functions of the tapped activations, one value per batch item.

    objective = channel("res_block_3", 7, batch=0) + 0.5 * sae_feature(site, sae, 12, batch=1)
    values = objective(acts)           # acts: dict site -> (B, ..., C); values: (B,)

Objectives compose with `+`, `-` and `*` (by a number). A term made with `batch=i` counts only
for item i, so one batched run optimizes a different target per item, and each item's value
reads only its own row: its gradient is the gradient it would have alone. Both loops use them:
`render.visualize` maximizes an objective, `paper.descent` descends (or ascends) one channel per
item (`filter_batch`, whose per-item channels may be tensors, so that one compiled step serves
every batch on the same sites).
"""

import numpy as np
import tensorflow as tf

from keras_sd_interp.indices import check_index


class Objective:
    """A function of the tapped activations giving one value per batch item, to MAXIMIZE.

    `fn(acts)` takes a dict site -> tensor (B, ..., C) and returns (B,) float32; `sites` lists
    the sites it reads. Objectives compose: `a + b`, `a - b`, `2.0 * a`, `-a`; a term made with
    `batch=i` counts only for item i (per-item targets in one batched run).
    """

    def __init__(self, fn, sites, name="objective"):
        self.fn, self.sites, self.name = fn, tuple(sorted(set(sites))), name

    def __call__(self, acts):
        return self.fn(acts)

    def __add__(self, other):
        if isinstance(other, (int, float)):
            return Objective(lambda a: self(a) + float(other), self.sites, self.name)
        return Objective(lambda a: self(a) + other(a), self.sites + other.sites,
                         f"{self.name} + {other.name}")

    __radd__ = __add__

    def __neg__(self):
        return Objective(lambda a: -self(a), self.sites, f"-{self.name}")

    def __sub__(self, other):
        return self + (-other)

    def __mul__(self, scalar):
        if not isinstance(scalar, (int, float)):
            raise TypeError(f"objectives multiply by numbers only, not {type(scalar).__name__}")
        return Objective(lambda a: float(scalar) * self(a), self.sites, f"{scalar} * {self.name}")

    __rmul__ = __mul__


def _masked(values, batch):
    """values (B,) kept only at item `batch` (None: all items)."""
    if batch is None:
        return values
    mask = tf.one_hot(batch, tf.shape(values)[0], dtype=values.dtype)
    return values * mask


def _spatial_mean(x):
    """(B, ..., C) -> (B, C): mean over every axis between batch and channels."""
    return tf.reduce_mean(x, axis=list(range(1, len(x.shape) - 1)))


def _channel_of(site, x, index):
    """`index` checked against the channels of `site`'s tensor x (..., C) (static C)."""
    return check_index("channel", index, x.shape[-1], f"site {site!r}")


def channel(site, index, batch=None):
    """Mean activation of channel `index` (0..C-1) of `site` over all positions; ValueError for
    a negative index (which would read from the end) or one past the site's channels."""
    index = check_index("channel", index)

    def fn(acts):
        return _masked(_spatial_mean(acts[site])[:, _channel_of(site, acts[site], index)], batch)

    return Objective(fn, [site], f"{site}:{index}")


def item_channels(site, indices, weights):
    """Item i: the mean of channel `indices[i]` of `site`, times `weights[i]` (1 where item i
    looks at `site`, 0 where it looks elsewhere). indices (B,) int32, weights (B,) float32:
    arrays or tensors (a compiled step's inputs)."""
    return Objective(lambda a: tf.gather(_spatial_mean(a[site]), indices, batch_dims=1)
                     * weights, [site], f"{site}:channels")


def filter_batch(addresses, indices, weights):
    """One channel per item over several sites: the sum of `item_channels(addresses[k],
    indices[:, k], weights[:, k])`. indices, weights: (B, len(addresses)), as
    `targets.target_table` gives them."""
    return batch_sum([item_channels(address, indices[:, k], weights[:, k])
                      for k, address in enumerate(addresses)])


def neuron(site, index, position=None, batch=None):
    """Activation of channel `index` at one position (row, col) of a (B, h, w, C) site
    (default: the centre); ValueError for a negative or too large channel."""
    index = check_index("channel", index)

    def fn(acts):
        x = acts[site]
        row, col = position if position is not None else (x.shape[1] // 2, x.shape[2] // 2)
        return _masked(x[:, row, col, _channel_of(site, x, index)], batch)

    return Objective(fn, [site], f"{site}:{index}@{position}")


def direction(site, vector, batch=None):
    """Mean over positions of the dot product with `vector` (C,), normalised to unit length."""
    v = np.asarray(vector, np.float32)
    v = tf.constant(v / max(np.linalg.norm(v), 1e-12))
    return Objective(lambda a: _masked(tf.reduce_mean(
        tf.tensordot(a[site], v, axes=[[-1], [0]]), axis=list(range(1, len(a[site].shape) - 1))),
        batch), [site], f"{site}:direction")


def sae_feature(site, sae, latent, batch=None, columns=None):
    """Mean over positions of SAE latent `latent`'s encoder pre-activation,
    (x - b_dec) . W_enc[:, latent] + b_enc[latent] (linear in x: no top-k, no ReLU).

    columns: None (every position) or (start, stop): only those columns of a (B, h, w, C)
    site count, e.g. (0, w // 2) for the left item cell of a tiny composition.
    ValueError for a latent outside 0..m-1 (a negative one would pick from the end)."""
    latent = check_index("latent", latent, sae.num_latents)
    w = tf.constant(sae.W_enc.numpy()[:, latent])
    offset = float(sae.b_enc.numpy()[latent] - sae.b_dec.numpy() @ sae.W_enc.numpy()[:, latent])

    def fn(acts):
        x = acts[site] if columns is None else acts[site][:, :, columns[0]:columns[1]]
        return _masked(tf.reduce_mean(tf.tensordot(x, w, axes=[[-1], [0]]),
                                      axis=list(range(1, len(x.shape) - 1))) + offset, batch)

    return Objective(fn, [site], f"{site}:sae{latent}")


def item_sae_features(site, sae, latents):
    """Item i: `sae_feature(site, sae, latents[i])` (every position). latents (B,) int32: an
    array or a tensor, e.g. a tf.Variable that a compiled step reads, so that one trace serves
    every batch of latents (`render.Visualizer`)."""
    w_enc = tf.constant(sae.W_enc.numpy())                                 # (C, m)
    offsets = tf.constant(sae.b_enc.numpy() - sae.b_dec.numpy() @ sae.W_enc.numpy())  # (m,)

    def fn(acts):
        mean = _spatial_mean(acts[site])                                   # (B, C)
        columns = tf.gather(w_enc, latents, axis=1)                        # (C, B)
        return tf.einsum("bc,cb->b", mean, columns) + tf.gather(offsets, latents)

    return Objective(fn, [site], f"{site}:sae_items")


def diversity(site, weight=1.0):
    """lucent's diversity: minus each item's mean cosine similarity between its Gram matrix
    (channels x channels over positions) and the other items' (B >= 2)."""

    def fn(acts):
        x = acts[site]
        b = tf.shape(x)[0]
        flat = tf.reshape(x, (b, -1, x.shape[-1]))
        gram = tf.reshape(tf.matmul(flat, flat, transpose_a=True), (b, -1))
        gram = tf.math.l2_normalize(gram, axis=1)
        sim = tf.matmul(gram, gram, transpose_b=True)                   # (B, B)
        off = sim * (1.0 - tf.eye(b))
        return -weight * tf.reduce_sum(off, axis=1) / tf.cast(tf.maximum(b - 1, 1), tf.float32)

    return Objective(fn, [site], f"diversity({site})")


def batch_sum(objectives):
    """Sum of per-item objectives (use with `batch=i` terms: one target per item)."""
    total = objectives[0]
    for obj in objectives[1:]:
        total = total + obj
    return total


def feature_batch(site, sae=None, latents=(), channels=(), columns=None):
    """One item per SAE latent of `sae`, then one per channel of `site`, each item maximizing
    its own term (`sae_feature` / `channel`, batch=i); `columns` as in `sae_feature`.

    Returns:
        (objective, names): names "latent_{j}" and "channel_{c}", in item order.
    """
    terms = [sae_feature(site, sae, int(j), batch=i, columns=columns)
             for i, j in enumerate(latents)]
    terms += [channel(site, int(c), batch=len(terms) + k) for k, c in enumerate(channels)]
    names = [f"latent_{j}" for j in latents] + [f"channel_{c}" for c in channels]
    return batch_sum(terms), names
