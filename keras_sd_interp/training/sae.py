"""Training a top-k SAE on collected activations (SAeUron's recipe, small).

    sae = SparseAutoencoder(d_in=96)
    history = train_sae(sae, tokens, steps=3000, batch_size=1024, checkpoint_dir="runs/sae")

Each step: batch top-k codes, loss = FVU + aux_weight * auxiliary FVU of the residual from the
dead latents (no firing over the last `dead_window` tokens), Adam, then decoder rows
renormalised to unit norm. b_dec starts at the geometric median of (up to 20k) tokens.
Metrics logged as SAeUron: fvu, l0 (mean non-zeros per token), dead share. Checkpoints
(tf.train.CheckpointManager) every `checkpoint_every` steps; a run with the same directory
resumes from the newest one.
"""

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from keras_sd_interp.sae.model import geometric_median, losses


def _train_step(sae, optimizer):
    @tf.function
    def step(x, dead_mask):
        with tf.GradientTape() as tape:
            out = losses(sae, x, dead_mask)
        variables = [sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec]
        optimizer.apply_gradients(zip(tape.gradient(out["total"], variables), variables))
        sae.normalize_decoder()
        fired = tf.reduce_any(out["z"] > 0, axis=0)
        l0 = tf.reduce_mean(tf.reduce_sum(tf.cast(out["z"] > 0, tf.float32), axis=1))
        return out["fvu"], out["aux"], l0, fired
    return step


def train_sae(sae, tokens, steps=2000, batch_size=1024, learning_rate=1e-3, seed=0,
              dead_window=None, checkpoint_dir=None, checkpoint_every=500, log_every=100,
              progress=True):
    """Trains `sae` on tokens (n, d) in place.

    Args:
        dead_window: tokens without firing after which a latent counts as dead (default:
            min(len(tokens), 50 * batch_size)).
    Returns:
        list of dicts {step, fvu, aux, l0, dead} every `log_every` steps (and the last).
    """
    tokens = np.asarray(tokens, np.float32)
    if tokens.ndim != 2 or tokens.shape[1] != sae.d_in:
        raise ValueError(f"tokens have shape {tokens.shape}; expected (n, {sae.d_in})")
    dead_window = dead_window or min(len(tokens), 50 * batch_size)
    optimizer = tf.keras.optimizers.Adam(learning_rate)
    step_var = tf.Variable(0, dtype=tf.int64)
    since_fired = tf.Variable(tf.zeros(sae.num_latents, tf.int64))
    manager = None
    if checkpoint_dir:
        ckpt = tf.train.Checkpoint(sae=sae, optimizer=optimizer, step=step_var,
                                   since_fired=since_fired)
        manager = tf.train.CheckpointManager(ckpt, checkpoint_dir, max_to_keep=2)
        if manager.latest_checkpoint:
            # Build the optimizer's slots first so that restore fills them.
            optimizer.build([sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec])
            ckpt.restore(manager.latest_checkpoint)
    if int(step_var) == 0:
        rng = np.random.default_rng(seed)
        sample = tokens[rng.choice(len(tokens), min(len(tokens), 20000), replace=False)]
        sae.init_decoder_bias(geometric_median(sample))
    train_step = _train_step(sae, optimizer)
    history = []
    start = int(step_var)
    bar = tqdm(range(start, steps), desc="SAE", disable=not progress, initial=start, total=steps)
    for i in bar:
        rng = np.random.default_rng([seed, i])   # batch i is the same whether resumed or not
        x = tokens[rng.integers(0, len(tokens), batch_size)]
        fvu, aux, l0, fired = train_step(tf.constant(x), since_fired >= dead_window)
        since_fired.assign(tf.where(fired, tf.zeros_like(since_fired), since_fired + batch_size))
        step_var.assign(i + 1)
        if (i + 1) % log_every == 0 or i + 1 == steps:
            row = {"step": i + 1, "fvu": float(fvu), "aux": float(aux), "l0": float(l0),
                   "dead": float(np.mean(since_fired.numpy() >= dead_window))}
            history.append(row)
            bar.set_postfix(fvu=f"{row['fvu']:.3f}", l0=f"{row['l0']:.1f}",
                            dead=f"{row['dead']:.2f}")
        if manager and ((i + 1) % checkpoint_every == 0 or i + 1 == steps):
            manager.save(checkpoint_number=i + 1)
    return history


def evaluate_sae(sae, tokens, batch_size=4096):
    """FVU, L0 (per-token top-k, so k) and dead share (never firing on `tokens`) of `sae`."""
    tokens = np.asarray(tokens, np.float32)
    err = 0.0
    fired = np.zeros(sae.num_latents, bool)
    for start in range(0, len(tokens), batch_size):
        x = tf.constant(tokens[start:start + batch_size])
        z = sae.encode(x)
        err += float(tf.reduce_sum(tf.square(x - sae.decode(z))))
        fired |= np.asarray(tf.reduce_any(z > 0, axis=0))
    total = float(np.sum(np.square(tokens - tokens.mean(0))))
    nonzero = sum(float(tf.reduce_sum(tf.cast(sae.encode(tf.constant(tokens[s:s + batch_size]))
                                              > 0, tf.float32)))
                  for s in range(0, len(tokens), batch_size))
    return {"fvu": err / total, "l0": nonzero / len(tokens), "dead": float(1 - fired.mean()),
            "num_tokens": int(len(tokens))}


def save_sae(path, sae, record=None):
    """Writes `sae` to `path` (.npz, float32 weights + config) and `record` next to it as
    `<path without .npz>.json`, both atomically."""
    from keras_sd_interp.io import atomic_path, save_json

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **sae.get_weights(), **sae.config())
    if record is not None:
        save_json(str(path)[:-4] + ".json", record)
