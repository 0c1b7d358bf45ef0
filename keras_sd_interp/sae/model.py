"""A batch top-k sparse autoencoder, as SAeUron trains them on SD's U-Net activations.

    sae = SparseAutoencoder(d_in=96, expansion=16, k=32)
    sae.init_decoder_bias(geometric_median(x))         # b_dec at the data's geometric median
    pre = sae.pre_activations(x)                        # (n, m): (x - b_dec) @ W_enc + b_enc
    z = sae.encode(x)                                   # (n, m): ReLU, then top-k per row
    x_hat = sae.decode(z)                               # (n, d): z @ W_dec + b_dec

Shapes: d = input width (channels of the site), m = d * expansion latents. Training uses the
*batch* top-k (the k * n largest activations over the whole batch, so the mean L0 is k while a
token may use more or fewer); `encode` (inference, feature tools) keeps exactly k per token.
Decoder rows (one per latent; the "columns" of W_dec in the x = W z convention) have unit norm
and are renormalised after each step (`normalize_decoder`). The auxiliary loss (`aux_loss`)
reconstructs the residual from the top k_aux dead latents, weight 1/32 (SAeUron / EleutherAI
`sparsify`).
"""

import numpy as np
import tensorflow as tf


def topk(pre, k):
    """Keeps the k largest entries of each row of `pre` (n, m) after ReLU, zeroes the rest.

    Returns (n, m) float32 with at most k non-zeros per row (exactly k where k entries are > 0).
    """
    values, indices = tf.math.top_k(pre, k=k)
    values = tf.nn.relu(values)
    rows = tf.repeat(tf.range(tf.shape(pre)[0])[:, None], k, axis=1)
    scatter = tf.stack([rows, indices], axis=-1)
    return tf.scatter_nd(tf.reshape(scatter, (-1, 2)), tf.reshape(values, (-1,)), tf.shape(pre))


def batch_topk(pre, k):
    """Keeps the k * n largest entries of the whole batch `pre` (n, m) after ReLU.

    Returns (n, m) float32 with k * n non-zeros in all (where that many are > 0).
    """
    flat = tf.reshape(pre, (-1,))
    n = tf.shape(pre)[0]
    values, indices = tf.math.top_k(flat, k=k * n)
    dense = tf.scatter_nd(indices[:, None], tf.nn.relu(values), tf.shape(flat))
    return tf.reshape(dense, tf.shape(pre))


def geometric_median(points, iterations=100, eps=1e-8):
    """Weiszfeld's iterations: the point minimising the summed Euclidean distance.

    Args:
        points: (n, d) float array.
    Returns:
        (d,) float32.
    """
    points = np.asarray(points, np.float64)
    guess = points.mean(axis=0)
    for _ in range(iterations):
        dist = np.linalg.norm(points - guess, axis=1)
        weights = 1.0 / np.maximum(dist, eps)
        new = (weights[:, None] * points).sum(0) / weights.sum()
        if np.linalg.norm(new - guess) < 1e-10 * (1 + np.linalg.norm(guess)):
            guess = new
            break
        guess = new
    return guess.astype(np.float32)


class SparseAutoencoder(tf.Module):
    """Top-k SAE. Variables: W_enc (d, m), b_enc (m,), W_dec (m, d), b_dec (d,)."""

    def __init__(self, d_in, expansion=16, k=32, k_aux=None, aux_weight=1 / 32, seed=0,
                 name="sae"):
        super().__init__(name=name)
        if k <= 0 or k > d_in * expansion:
            raise ValueError(f"k={k} must be in 1..{d_in * expansion} (d_in * expansion)")
        self.d_in, self.expansion, self.k = int(d_in), int(expansion), int(k)
        self.num_latents = self.d_in * self.expansion
        self.k_aux = int(k_aux if k_aux is not None else d_in // 2)
        self.aux_weight = float(aux_weight)
        rng = np.random.default_rng(seed)
        w = rng.standard_normal((self.num_latents, self.d_in)).astype(np.float32)
        w /= np.linalg.norm(w, axis=1, keepdims=True)
        self.W_dec = tf.Variable(w, name="W_dec")           # (m, d), unit rows
        self.W_enc = tf.Variable(w.T.copy(), name="W_enc")  # (d, m), the decoder's transpose
        self.b_enc = tf.Variable(tf.zeros(self.num_latents), name="b_enc")
        self.b_dec = tf.Variable(tf.zeros(self.d_in), name="b_dec")

    def config(self):
        return {"d_in": self.d_in, "expansion": self.expansion, "k": self.k,
                "k_aux": self.k_aux, "aux_weight": self.aux_weight}

    def init_decoder_bias(self, median):
        """Sets b_dec to `median` (d,), the data's geometric median."""
        self.b_dec.assign(np.asarray(median, np.float32))

    def pre_activations(self, x):
        """(n, d) -> (n, m): (x - b_dec) @ W_enc + b_enc (the pre-encoder bias subtraction)."""
        return tf.matmul(x - self.b_dec, self.W_enc) + self.b_enc

    def encode(self, x):
        """(n, d) -> (n, m) sparse codes, exactly the k largest (ReLU'd) per token."""
        return topk(self.pre_activations(x), self.k)

    def decode(self, z):
        """(n, m) -> (n, d): z @ W_dec + b_dec."""
        return tf.matmul(z, self.W_dec) + self.b_dec

    def __call__(self, x):
        """(n, d) -> (n, d) reconstruction through per-token top-k."""
        return self.decode(self.encode(x))

    def normalize_decoder(self):
        """Renormalises every decoder row (latent direction) to unit L2 norm."""
        self.W_dec.assign(tf.math.l2_normalize(self.W_dec, axis=1))

    def get_weights(self):
        return {v.name.split(":")[0].split("/")[-1]: v.numpy() for v in
                (self.W_enc, self.b_enc, self.W_dec, self.b_dec)}

    def set_weights(self, weights):
        for var in (self.W_enc, self.b_enc, self.W_dec, self.b_dec):
            var.assign(weights[var.name.split(":")[0].split("/")[-1]])


def fvu(x, x_hat):
    """Fraction of variance unexplained: sum (x - x_hat)^2 / sum (x - mean(x))^2 (scalar)."""
    total = tf.reduce_sum(tf.square(x - tf.reduce_mean(x, axis=0)))
    return tf.reduce_sum(tf.square(x - x_hat)) / total


def losses(sae, x, dead_mask):
    """Training losses on a batch, as SAeUron (batch top-k + auxiliary dead-latent loss).

    Args:
        x: (n, d) activations.
        dead_mask: (m,) bool, latents that have not fired for a long time.
    Returns:
        dict: total, fvu, aux (the dead-latent FVU of the residual), z (n, m) codes.
    """
    pre = sae.pre_activations(x)
    z = batch_topk(pre, sae.k)
    x_hat = sae.decode(z)
    main = fvu(x, x_hat)
    # Auxiliary: reconstruct the residual from the top k_aux latents among the dead ones.
    num_dead = tf.reduce_sum(tf.cast(dead_mask, tf.int32))
    k_aux = tf.minimum(sae.k_aux, num_dead)
    dead_pre = tf.where(dead_mask[None, :], pre, tf.fill(tf.shape(pre), -1e9))
    values, indices = tf.math.top_k(dead_pre, k=sae.k_aux)
    keep = tf.cast(tf.range(sae.k_aux) < k_aux, tf.float32)[None, :]
    aux_codes = tf.nn.relu(values) * keep
    residual = tf.stop_gradient(x - x_hat)
    residual_hat = tf.einsum("nk,nkd->nd", aux_codes, tf.gather(sae.W_dec, indices))
    aux = tf.where(num_dead > 0, fvu(residual, residual_hat), 0.0)
    aux = tf.where(tf.math.is_finite(aux), aux, 0.0)
    return {"total": main + sae.aux_weight * aux, "fvu": main, "aux": aux, "z": z}


SAE_ARRAYS = ("W_enc", "b_enc", "W_dec", "b_dec", "d_in", "expansion", "k", "k_aux",
              "aux_weight")


def sae_from_arrays(arrays):
    """An SAE from a dict of arrays (an opened .npz): W_enc, b_enc, W_dec, b_dec and the
    config scalars d_in, expansion, k, k_aux, aux_weight. ValueError when one is missing or
    the shapes do not fit the config."""
    missing = [name for name in SAE_ARRAYS if name not in arrays]
    if missing:
        raise ValueError(f"missing arrays {missing} (an SAE has {list(SAE_ARRAYS)})")
    sae = SparseAutoencoder(int(arrays["d_in"]), int(arrays["expansion"]), int(arrays["k"]),
                            int(arrays["k_aux"]), float(arrays["aux_weight"]))
    expected = {name: tuple(var.shape) for name, var in
                (("W_enc", sae.W_enc), ("b_enc", sae.b_enc), ("W_dec", sae.W_dec),
                 ("b_dec", sae.b_dec))}
    for name, shape in expected.items():
        if tuple(np.shape(arrays[name])) != shape:
            raise ValueError(f"{name} has shape {np.shape(arrays[name])}; the config (d_in "
                             f"{sae.d_in}, {sae.num_latents} latents) needs {shape}")
    sae.set_weights({name: np.asarray(arrays[name], np.float32) for name in expected})
    return sae
