"""Training the DDPM noise predictor with the simple L2 loss, resumable from per-epoch checkpoints.

A checkpoint directory holds `model.weights.h5`, `ema.weights.h5` (an exponential moving average
of the weights, what is exported), `optimizer.npz` and `state.json` (epochs done, loss per
epoch, seconds per epoch, the run's settings). Each file is replaced atomically after every
epoch, so a run stopped at any moment resumes from the last finished epoch. A checkpoint made
before the average existed starts it from its weights when resumed (`state["ema_from_epoch"]`).
"""

import json
import math
import numbers
import os
import time

import keras
import numpy as np
import tensorflow as tf
from tqdm import tqdm

from keras_sd_interp.data.fashion_mnist import load_fashion_mnist, to_model_range
from keras_sd_interp.ddpm.diffusion import q_sample, schedule_constants
from keras_sd_interp.ddpm.pretrained import (
    ASSET_DIR,
    ASSET_MOMENTS,
    ASSET_RECORD,
    ASSET_WEIGHTS,
    read_json,
)
from keras_sd_interp.ddpm.prior import data_moments
from keras_sd_interp.ddpm.schedules import get_schedule
from keras_sd_interp.ddpm.unet import build_unet
from keras_sd_interp.io import atomic_path, save_json
from keras_sd_interp.models.keras_weights import (
    load_weights_checked,
    save_float16_weights,
    save_weights_atomic,
)

WEIGHTS_FILE = "model.weights.h5"
EMA_FILE = "ema.weights.h5"
OPTIMIZER_FILE = "optimizer.npz"
STATE_FILE = "state.json"


def make_train_step(model, optimizer, alphas_cumprod, generator, jit_compile=True,
                    ema_model=None, ema_decay=0.999):
    """Returns a compiled step: clean images (B, 28, 28, 1) in [-1, 1] -> mean squared noise error.
    After the update, `ema_model`'s weights (if given) move to decay * ema + (1 - decay) * w.

    `jit_compile` (XLA) costs ~20 s of compiling; tests turn it off.
    """
    pairs = list(zip(ema_model.weights, model.weights)) if ema_model is not None else []
    alphas_cumprod = tf.constant(alphas_cumprod, tf.float32)
    num_timesteps = int(alphas_cumprod.shape[0])

    @tf.function(jit_compile=jit_compile)
    def train_step(x0):
        batch = tf.shape(x0)[0]
        flip = generator.uniform([batch, 1, 1, 1]) < 0.5  # The example's random horizontal flip.
        x0 = tf.where(flip, tf.reverse(x0, axis=[2]), x0)
        timesteps = generator.uniform([batch], 0, num_timesteps, dtype=tf.int32)
        noise = generator.normal(tf.shape(x0))
        x_t = q_sample(x0, timesteps, noise, alphas_cumprod)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model([x_t, timesteps], training=True) - noise))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        for average, weight in pairs:
            average.assign(ema_decay * average + (1.0 - ema_decay) * weight)
        return loss

    return train_step


def _save_checkpoint(checkpoint_dir, model, ema_model, optimizer, generator, state):
    save_weights_atomic(model, os.path.join(checkpoint_dir, WEIGHTS_FILE))
    save_weights_atomic(ema_model, os.path.join(checkpoint_dir, EMA_FILE))
    arrays = {f"var_{i}": v.numpy() for i, v in enumerate(optimizer.variables)}
    arrays["generator_state"] = generator.state.numpy()
    with atomic_path(os.path.join(checkpoint_dir, OPTIMIZER_FILE)) as tmp:
        np.savez(tmp, **arrays)
    save_json(os.path.join(checkpoint_dir, STATE_FILE), state)  # Written last: marks the epoch done.


def _read_state(checkpoint_dir, settings):
    """The checkpoint's state dict, or None when there is none; checks it fits these settings."""
    state_path = os.path.join(checkpoint_dir, STATE_FILE)
    if not os.path.exists(state_path):
        return None
    with open(state_path) as f:
        state = json.load(f)
    for key in ("dim", "timesteps", "schedule"):
        if state["settings"][key] != settings[key]:
            raise ValueError(f"Checkpoint in {checkpoint_dir} was made with {key}="
                             f"{state['settings'][key]!r}; this run asks for {settings[key]!r}")
    return state


def _restore_checkpoint(checkpoint_dir, model, ema_model, optimizer, generator):
    """Loads the weights, their average (or starts it from the weights when the checkpoint
    has none; returns False then), optimizer slots and noise generator state."""
    model.load_weights(os.path.join(checkpoint_dir, WEIGHTS_FILE))
    ema_path = os.path.join(checkpoint_dir, EMA_FILE)
    had_ema = os.path.exists(ema_path)
    if had_ema:
        ema_model.load_weights(ema_path)
    else:
        ema_model.set_weights(model.get_weights())
    with np.load(os.path.join(checkpoint_dir, OPTIMIZER_FILE)) as arrays:
        for i, variable in enumerate(optimizer.variables):
            variable.assign(arrays[f"var_{i}"])
        generator.reset(arrays["generator_state"])
    return had_ema


def train_ddpm(
    checkpoint_dir,
    epochs=5,
    batch_size=128,
    learning_rate=1e-3,
    timesteps=300,
    schedule="linear",
    dim=16,
    seed=0,
    max_minutes=None,
    max_steps_per_epoch=None,
    data_dir=None,
    jit_compile=True,
    ema_decay=0.999,
):
    """Trains (or resumes training of) the DDPM on the real Fashion-MNIST training set.

    Keeps an exponential moving average of the weights (decay `ema_decay` per step, as DDPM
    training does; Ho et al. use 0.9999 over 800k steps, 0.999 suits a few thousand steps here),
    which `export_checkpoint` ships.

    Stops after `epochs` epochs, or earlier when the next epoch would end past `max_minutes`
    of training time (counted over all runs). `max_steps_per_epoch` shortens epochs (each then
    sees a fresh random subset of that many batches); `state["epoch_steps"]` records the steps.

    Returns (model, state): the Keras U-Net and the dict saved in `state.json`.

    Raises:
        ValueError: `learning_rate` is not a finite number > 0 (checked before any work).
        FloatingPointError: the loss stopped being finite; the epoch is not checkpointed.
    """
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real) \
            or not math.isfinite(learning_rate) or learning_rate <= 0:
        raise ValueError(f"learning_rate={learning_rate!r} must be a finite number > 0 "
                         "(the default: 1e-3)")
    images, _ = load_fashion_mnist("train", data_dir=data_dir)
    x0_all = to_model_range(images)
    betas = get_schedule(schedule, timesteps)
    constants = schedule_constants(betas)

    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay={ema_decay!r} must be in [0, 1) (0: no averaging)")
    settings = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                    timesteps=timesteps, schedule=schedule, dim=dim, seed=seed,
                    train_images=int(len(x0_all)))
    state = _read_state(checkpoint_dir, settings)  # Other settings refused before any build.
    keras.utils.set_random_seed(seed)
    model = build_unet(dim=dim)
    ema_model = build_unet(dim=dim)
    ema_model.set_weights(model.get_weights())
    optimizer = keras.optimizers.Adam(learning_rate, global_clipnorm=1.0)
    optimizer.build(model.trainable_variables)
    generator = tf.random.Generator.from_seed(seed)

    if state is None:
        state = {"settings": settings, "epochs_done": 0, "epoch_loss": [], "epoch_seconds": [],
                 "ema_decay": ema_decay, "ema_from_epoch": 0}
    else:
        if not _restore_checkpoint(checkpoint_dir, model, ema_model, optimizer, generator):
            state.update(ema_decay=ema_decay, ema_from_epoch=state["epochs_done"])
        # The optimizer's saved variables include its rate; this run's rate wins.
        optimizer.learning_rate.assign(learning_rate)
    state["settings"]["epochs"] = epochs  # A resumed run's target, not the first run's.
    # A resumed run may lower the rate (a fine-tuning phase): record each epoch's own rate.
    state.setdefault("epoch_learning_rate",
                     [state["settings"]["learning_rate"]] * state["epochs_done"])

    train_step = make_train_step(model, optimizer, constants["alphas_cumprod"], generator,
                                 jit_compile, ema_model, ema_decay)
    steps_per_epoch = len(x0_all) // batch_size
    if max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, max_steps_per_epoch)

    while state["epochs_done"] < epochs:
        epoch = state["epochs_done"]
        spent_minutes = sum(state["epoch_seconds"]) / 60
        if max_minutes and state["epoch_seconds"]:
            last_steps = state.get("epoch_steps", [len(x0_all) // batch_size])[-1]
            next_minutes = state["epoch_seconds"][-1] / last_steps * steps_per_epoch / 60
            if spent_minutes + next_minutes > max_minutes:
                print(f"Stopping: {spent_minutes:.1f} min spent; another epoch would pass {max_minutes}")
                break
        order = np.random.default_rng([seed, epoch]).permutation(len(x0_all))
        started = time.time()
        losses = []
        progress = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{epochs}", mininterval=5)
        for step in progress:
            batch = x0_all[order[step * batch_size:(step + 1) * batch_size]]
            losses.append(float(train_step(tf.constant(batch))))
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(
                    f"loss is {losses[-1]} at epoch {epoch + 1}, step {step + 1} "
                    f"(learning_rate={learning_rate}): stopped; epoch {epoch + 1} is not "
                    f"checkpointed and nothing is exported")
            if step % 20 == 0:
                progress.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        state["epochs_done"] = epoch + 1
        state["epoch_loss"].append(float(np.mean(losses)))
        state["last_100_steps_loss"] = float(np.mean(losses[-100:]))
        state["epoch_seconds"].append(time.time() - started)
        state.setdefault("epoch_steps", [len(x0_all) // batch_size] * epoch).append(steps_per_epoch)
        state["epoch_learning_rate"].append(learning_rate)
        _save_checkpoint(checkpoint_dir, model, ema_model, optimizer, generator, state)
        print(f"epoch {epoch + 1}: loss {state['epoch_loss'][-1]:.4f}, "
              f"{state['epoch_seconds'][-1]:.0f} s, checkpoint in {checkpoint_dir}")
    return model, state


def save_data_moments(path, images):
    """Writes `ddpm.prior.data_moments(images)` to `path` (.npz) as float16: 1.2 MB for 28x28
    images. The rounding does not matter to the start's Cholesky factor, whose matrix has every
    eigenvalue >= 1 - a-bar."""
    mean, covariance = data_moments(images)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, mean=mean.astype(np.float16), covariance=covariance.astype(np.float16))


def export_checkpoint(checkpoint_dir, out_dir=ASSET_DIR, extra_record=None, data_dir=None):
    """Writes a checkpoint's weights as float16 `ddpm_unet.weights.h5` plus `ddpm_record.json`
    (what `ddpm.pretrained.load_ddpm` loads): the moving average when the checkpoint has one,
    else the raw weights (`record["exported_weights"]` says which). Also writes the training
    images' mean and covariance, `ddpm_data_moments.npz`, which the matched start needs.

    Returns the record dict (training settings, losses, times, and `extra_record`).
    """
    state = read_json(os.path.join(checkpoint_dir, STATE_FILE), "DDPM checkpoint state")
    settings = state["settings"]
    ema_path = os.path.join(checkpoint_dir, EMA_FILE)
    exported = "ema" if os.path.exists(ema_path) else "raw"
    model = load_weights_checked(build_unet(dim=settings["dim"]),
                                 ema_path if exported == "ema" else
                                 os.path.join(checkpoint_dir, WEIGHTS_FILE), what="DDPM checkpoint")
    bad = [w.name for w in model.weights if not np.all(np.isfinite(w.numpy()))]
    if bad:
        raise ValueError(f"the checkpoint in {checkpoint_dir} has non-finite weights ({bad[:3]}"
                         f"{', ...' if len(bad) > 3 else ''}): not exporting it over {out_dir}")
    save_float16_weights(model, os.path.join(out_dir, ASSET_WEIGHTS))
    images, _ = load_fashion_mnist("train", data_dir=data_dir)
    save_data_moments(os.path.join(out_dir, ASSET_MOMENTS), to_model_range(images))
    record = {**state, "exported_weights": exported, **(extra_record or {})}
    save_json(os.path.join(out_dir, ASSET_RECORD), record)
    return record
