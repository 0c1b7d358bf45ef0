"""Training a top-k SAE on collected activations (SAeUron's recipe, small).

    sae = SparseAutoencoder(d_in=96)
    history = train_sae(sae, tokens, steps=3000, batch_size=1024, checkpoint_dir="runs/sae")
    history = train_sae_on_shards(sae, "runs/sae/acts", steps=3000)  # shards on disk, tf.data

Each step: batch top-k codes, loss = FVU + aux_weight * auxiliary FVU of the residual from the
dead latents (no firing over the last `dead_window` tokens), Adam, then decoder rows
renormalised to unit norm. b_dec starts at the geometric median of (up to 20k) tokens.
Metrics logged as SAeUron: fvu, l0 (mean non-zeros per token), dead share. Checkpoints
(tf.train.CheckpointManager) every `checkpoint_every` steps; a run with the same directory
resumes from the newest one, with its history. A NaN or inf in a batch or the loss stops the
run (FloatingPointError naming the step); `save_sae` refuses non-finite weights.
"""

import json
import os

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
        return out["total"], out["fvu"], out["aux"], l0, fired
    return step


HISTORY_FILE = "history.json"


def _check_batch(x, step):
    if not np.isfinite(x).all():
        raise FloatingPointError(
            f"SAE training step {step}: the batch holds a non-finite activation (NaN or inf); "
            "stopped before the update, no SAE written: check the collected activations")


def _check_loss(total, fvu, aux, step, learning_rate):
    if not np.isfinite(total):
        raise FloatingPointError(
            f"SAE training step {step}: the loss is not finite (fvu {fvu}, aux {aux}); stopped, "
            f"no SAE written: lower the learning rate (now {learning_rate}) or check the data")


class _Checkpoints:
    """The SAE, optimizer, step, dead-latent counters (and a data iterator) in `folder`, with
    the training history beside them (`history.json`), so a resumed run keeps its whole log."""

    def __init__(self, folder, sae, optimizer, step_var, since_fired, iterator=None):
        self.folder = folder
        objects = dict(sae=sae, optimizer=optimizer, step=step_var, since_fired=since_fired)
        if iterator is not None:
            objects["iterator"] = iterator
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(self.checkpoint, folder, max_to_keep=2)

    def restore(self, sae, optimizer):
        """Restores the newest checkpoint (if any); returns the history up to its step."""
        if not self.manager.latest_checkpoint:
            return []
        # Build the optimizer's slots first so that restore fills them.
        optimizer.build([sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec])
        self.checkpoint.restore(self.manager.latest_checkpoint)
        step = int(self.checkpoint.step)
        path = os.path.join(self.folder, HISTORY_FILE)
        if not os.path.isfile(path):
            return []
        with open(path) as handle:
            return [row for row in json.load(handle) if row["step"] <= step]

    def save(self, step, history):
        from keras_sd_interp.io import save_json

        save_json(os.path.join(self.folder, HISTORY_FILE), history)
        self.manager.save(checkpoint_number=step)


def _loop(sae, next_batch, steps, batch_size, learning_rate, median_sample, dead_window,
          checkpoint_dir, checkpoint_every, log_every, progress, iterator=None):
    """The training loop shared by `train_sae` (arrays) and `train_sae_on_shards` (tf.data).

    next_batch(i) -> (batch_size, d) float32 NumPy batch of step i."""
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate={learning_rate}: give a finite number > 0")
    optimizer = tf.keras.optimizers.Adam(learning_rate)
    step_var = tf.Variable(0, dtype=tf.int64)
    since_fired = tf.Variable(tf.zeros(sae.num_latents, tf.int64))
    history, saver = [], None
    if checkpoint_dir:
        saver = _Checkpoints(checkpoint_dir, sae, optimizer, step_var, since_fired, iterator)
        history = saver.restore(sae, optimizer)
    start = int(step_var)
    if start > steps:
        raise ValueError(f"steps={steps} is below the checkpoint's step {start} in "
                         f"{checkpoint_dir!r}: give steps >= {start} to continue that run")
    if start == 0:
        sample = np.asarray(median_sample(), np.float32)
        _check_batch(sample, 0)
        sae.init_decoder_bias(geometric_median(sample))
    train_step = _train_step(sae, optimizer)
    bar = tqdm(range(start, steps), desc="SAE", disable=not progress, initial=start, total=steps)
    for i in bar:
        x = next_batch(i)
        _check_batch(x, i + 1)
        total, fvu, aux, l0, fired = train_step(tf.constant(x), since_fired >= dead_window)
        _check_loss(float(total), float(fvu), float(aux), i + 1, learning_rate)
        since_fired.assign(tf.where(fired, tf.zeros_like(since_fired), since_fired + batch_size))
        step_var.assign(i + 1)
        if (i + 1) % log_every == 0 or i + 1 == steps:
            row = {"step": i + 1, "fvu": float(fvu), "aux": float(aux), "l0": float(l0),
                   "dead": float(np.mean(since_fired.numpy() >= dead_window))}
            history.append(row)
            bar.set_postfix(fvu=f"{row['fvu']:.3f}", l0=f"{row['l0']:.1f}",
                            dead=f"{row['dead']:.2f}")
        if saver and ((i + 1) % checkpoint_every == 0 or i + 1 == steps):
            saver.save(i + 1, history)
    return history


def train_sae(sae, tokens, steps=2000, batch_size=1024, learning_rate=1e-3, seed=0,
              dead_window=None, checkpoint_dir=None, checkpoint_every=500, log_every=100,
              progress=True):
    """Trains `sae` on tokens (n, d) in place.

    Args:
        dead_window: tokens without firing after which a latent counts as dead (default:
            min(len(tokens), 50 * batch_size)).
        checkpoint_dir: checkpoints (and the history) here; a run with the same folder resumes
            from the newest one (steps below it: ValueError).
    Returns:
        list of dicts {step, fvu, aux, l0, dead} every `log_every` steps (and the last),
        including those before a resumed checkpoint. A non-finite token or loss raises
        FloatingPointError naming the step.
    """
    tokens = np.asarray(tokens, np.float32)
    if tokens.ndim != 2 or tokens.shape[1] != sae.d_in:
        raise ValueError(f"tokens have shape {tokens.shape}; expected (n, {sae.d_in})")

    def median_sample():
        rng = np.random.default_rng(seed)
        return tokens[rng.choice(len(tokens), min(len(tokens), 20000), replace=False)]

    def next_batch(i):
        rng = np.random.default_rng([seed, i])   # batch i is the same whether resumed or not
        return tokens[rng.integers(0, len(tokens), batch_size)]

    return _loop(sae, next_batch, steps, batch_size, learning_rate, median_sample,
                 dead_window or min(len(tokens), 50 * batch_size), checkpoint_dir,
                 checkpoint_every, log_every, progress)


def train_sae_on_shards(sae, shard_dir, steps=2000, batch_size=1024, learning_rate=1e-3,
                        seed=0, dead_window=None, checkpoint_dir=None, checkpoint_every=500,
                        log_every=100, shuffle_buffer=65536, progress=True):
    """Trains `sae` in place on the activation shards of `shard_dir` (`sae.shards`), read with
    tf.data; the data iterator is checkpointed with the SAE, so a resumed run continues the
    same token stream. Arguments and result as `train_sae` (dead_window default
    50 * batch_size)."""
    from keras_sd_interp.training.sae_shards import sample_tokens, shard_dataset

    dataset = shard_dataset(shard_dir, batch_size, seed, shuffle_buffer)
    if dataset.element_spec.shape[-1] != sae.d_in:
        raise ValueError(f"the shards in {shard_dir!r} hold tokens of width "
                         f"{dataset.element_spec.shape[-1]}; the SAE expects {sae.d_in}")
    iterator = iter(dataset)
    return _loop(sae, lambda i: next(iterator).numpy(), steps, batch_size, learning_rate,
                 lambda: sample_tokens(shard_dir, 20000, seed), dead_window or 50 * batch_size,
                 checkpoint_dir, checkpoint_every, log_every, progress, iterator=iterator)


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

    bad = [name for name, value in sae.get_weights().items() if not np.isfinite(value).all()]
    if bad:
        raise FloatingPointError(f"the SAE's {', '.join(bad)} hold NaN or inf: not written to "
                                 f"{path}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **sae.get_weights(), **sae.config())
    if record is not None:
        save_json(str(path)[:-4] + ".json", record)


def save_saeuron(folder, sae, batch_topk=True):
    """Writes `sae` as a SAeUron checkpoint folder (cfg.json + sae.safetensors, float32),
    each file atomically."""
    from safetensors.numpy import save_file

    from keras_sd_interp.io import atomic_path, save_json
    from keras_sd_interp.sae.saeuron import CONFIG_FILE, WEIGHTS_FILE

    weights = sae.get_weights()
    tensors = {"encoder.weight": weights["W_enc"].T.copy(), "encoder.bias": weights["b_enc"],
               "W_dec": weights["W_dec"], "b_dec": weights["b_dec"]}
    os.makedirs(folder, exist_ok=True)
    with atomic_path(os.path.join(folder, WEIGHTS_FILE)) as tmp:
        save_file({n: np.ascontiguousarray(v, np.float32) for n, v in tensors.items()}, tmp)
    save_json(os.path.join(folder, CONFIG_FILE), {
        "expansion_factor": sae.expansion, "normalize_decoder": True, "num_latents": 0,
        "k": sae.k, "batch_topk": batch_topk, "sample_topk": False, "input_unit_norm": False,
        "multi_topk": False, "d_in": sae.d_in})
