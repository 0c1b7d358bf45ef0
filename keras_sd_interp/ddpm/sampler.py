"""The reverse (denoising) chain for ANY sequence of betas, compiled as one TensorFlow loop.

Convention: a schedule `betas` (m,) lists forward steps 0..m-1. The reverse chain starts from
x_{m-1} (the image fed to the model at step m-1) and applies steps i = m-1, ..., 0:

    eps      = model(x_i, model_timesteps[i])
    x0_hat_i = (x_i - sqrt(1 - a-bar_i) eps) / sqrt(a-bar_i)                  predicted clean image
    mean     = (x_i - beta_i / sqrt(1 - a-bar_i) eps) / sqrt(alpha_i)
    x_{i-1}  = mean + sqrt(posterior_variance_i) z,  z ~ N(0, I)  (posterior variance 0 at i = 0)

with alpha = 1 - beta and a-bar its running product. With the training betas and
model_timesteps = 0..T-1 this is exactly the DDPM sampler of Ho et al. For another schedule
the model still needs a training timestep at each step; by default it gets the training step
whose a-bar is nearest the schedule's a-bar there (for the training schedule, i itself).

The chain's first image x_{m-1} is N(0, I) noise, or that noise mapped through `start` (e.g.
`ddpm.prior.MatchedStart`, a Gaussian matching what the model saw at that step).

The noise z of step i is `tf.random.stateless_normal(seed=[seed, i])`, so a chain restarted
from x_t with the training betas[:t + 1] reproduces the rest of the standard chain exactly.
"""

import numpy as np
import tensorflow as tf

from keras_sd_interp.ddpm.diffusion import schedule_constants
from keras_sd_interp.ddpm.schedules import check_betas


def nearest_training_timesteps(betas, train_betas):
    """For each step of `betas` (m,), the training step whose a-bar is nearest. Returns int32 (m,)."""
    alpha_bars = np.cumprod(1.0 - check_betas(betas))
    train_alpha_bars = np.cumprod(1.0 - check_betas(train_betas))
    distance = np.abs(alpha_bars[:, None] - train_alpha_bars[None, :])
    return distance.argmin(axis=1).astype(np.int32)


def step_noise(shape, seed, step):
    """The Gaussian noise (shape) the chain adds at schedule step `step` for this `seed`.

    Drawn outside XLA: under `jit_compile` the same seed gives other numbers.
    """
    seeds = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    return tf.random.stateless_normal(shape, seed=seeds, alg="philox")


def reverse_step(x, eps, beta, alpha_bar, alpha_bar_prev, noise, clip_x0=False):
    """One DDPM reverse step (see the module docstring). Returns (x_{i-1}, x0_hat_i).

    x, eps, noise: (B, H, W, C); beta, alpha_bar (a-bar_i), alpha_bar_prev (a-bar_{i-1}): scalars.
    clip_x0: clip x0_hat to [-1, 1] and take the mean of q(x_{i-1} | x_i, x0_hat), as Ho et al.'s
    released sampler does (`clip_denoised=True`); without clipping that mean equals the eps form.
    """
    x0_hat = (x - tf.sqrt(1.0 - alpha_bar) * eps) / tf.sqrt(alpha_bar)
    if clip_x0:
        x0_hat = tf.clip_by_value(x0_hat, -1.0, 1.0)
        mean = (tf.sqrt(alpha_bar_prev) * beta * x0_hat
                + tf.sqrt(1.0 - beta) * (1.0 - alpha_bar_prev) * x) / (1.0 - alpha_bar)
    else:
        mean = (x - beta / tf.sqrt(1.0 - alpha_bar) * eps) / tf.sqrt(1.0 - beta)
    posterior_variance = beta * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar)
    return mean + tf.sqrt(posterior_variance) * noise, x0_hat


class Sampler:
    """Runs the reverse chain of a trained noise predictor under any beta schedule.

    model: keras.Model [images (B, H, W, C), timesteps (B,) int32] -> noise (B, H, W, C).
    train_betas: the schedule the model was trained with (T,), used to pick model timesteps.
    The loop is traced once per batch shape and works for schedules of any length.
    jit_compile=False keeps the step a plain graph (faster to trace: tests use it).
    start: None (the chain starts from N(0, I)) or a function mapping that noise (B, H, W, C)
    to the chain's first image, e.g. `ddpm.prior.MatchedStart`.
    clip_x0: clip each predicted clean image to [-1, 1] (see `reverse_step`).
    """

    def __init__(self, model, train_betas, jit_compile=True, start=None, clip_x0=False):
        self.model = model
        self.train_betas = check_betas(train_betas)
        self.start = start
        self.clip_x0 = clip_x0
        # One XLA-compiled step (model + update) inside one compiled loop over the schedule.
        # XLA makes the U-Net's forward pass ~1.4x faster here; compiling costs seconds per shape.
        self._step = tf.function(self._denoise_step, jit_compile=jit_compile, reduce_retracing=True)
        self._chain = tf.function(self._chain_loop, reduce_retracing=True)

    @property
    def start_name(self):
        """"standard" (N(0, I)) or the start's `name`, e.g. "matched"."""
        return "standard" if self.start is None else getattr(self.start, "name", type(self.start).__name__)

    @property
    def settings(self):
        """What decides the chain besides the model and seed: {"start": name, "clip_x0": bool}."""
        return {"start": self.start_name, "clip_x0": bool(self.clip_x0)}

    @property
    def num_timesteps(self):
        return len(self.train_betas)

    def _denoise_step(self, x, model_timestep, beta, alpha_bar, alpha_bar_prev, noise):
        eps = self.model([x, tf.fill([tf.shape(x)[0]], model_timestep)], training=False)
        return reverse_step(x, eps, beta, alpha_bar, alpha_bar_prev, noise, self.clip_x0)

    def _chain_loop(self, x, betas, alpha_bars, alpha_bars_prev, model_timesteps, seed, record):
        num_steps = tf.shape(betas)[0]
        xs = tf.TensorArray(tf.float32, size=tf.where(record, num_steps, 0), element_shape=x.shape)
        x0s = tf.TensorArray(tf.float32, size=tf.where(record, num_steps, 0), element_shape=x.shape)
        for i in tf.range(num_steps - 1, -1, -1):
            x_next, x0_hat = self._step(x, model_timesteps[i], betas[i], alpha_bars[i],
                                        alpha_bars_prev[i], step_noise(tf.shape(x), seed, i))
            if record:
                xs = xs.write(i, x)
                x0s = x0s.write(i, x0_hat)
            x = x_next
        return x, xs.stack(), x0s.stack()

    def sample_from(self, x_t, betas, model_timesteps=None, seed=0, record=False):
        """Denoises x_t (B, H, W, C) with the reverse chain of `betas` (m,).

        Returns a dict of NumPy arrays: "final" (B, H, W, C) and, when record is True,
        "x" (m, B, H, W, C), the image fed to the model at each schedule step i (x[i] = x_i),
        and "x0_hat" (m, B, H, W, C), the predicted clean image at each step.
        """
        constants = schedule_constants(betas)
        if model_timesteps is None:
            model_timesteps = nearest_training_timesteps(betas, self.train_betas)
        model_timesteps = np.asarray(model_timesteps, np.int32)
        if model_timesteps.shape != constants["betas"].shape:
            raise ValueError(f"model_timesteps has shape {model_timesteps.shape}; it needs one "
                             f"entry per beta, shape {constants['betas'].shape}")
        if model_timesteps.min() < 0 or model_timesteps.max() >= self.num_timesteps:
            raise ValueError(f"model_timesteps must lie in 0..{self.num_timesteps - 1}, got "
                             f"{model_timesteps.min()}..{model_timesteps.max()}")
        final, xs, x0s = self._chain(
            tf.convert_to_tensor(x_t, tf.float32),
            tf.constant(constants["betas"], tf.float32),
            tf.constant(constants["alphas_cumprod"], tf.float32),
            tf.constant(constants["alphas_cumprod_prev"], tf.float32),
            tf.constant(model_timesteps),
            tf.constant(seed, tf.int64),
            bool(record),
        )
        out = {"final": final.numpy()}
        if record:
            out["x"], out["x0_hat"] = xs.numpy(), x0s.numpy()
        return out

    def initial_noise(self, batch_size, seed, image_shape=(28, 28, 1)):
        """The chain's first image x_{T-1} for `seed`: N(0, I) noise, mapped through `start` when
        the sampler has one. Returns (batch_size, *image_shape) float32."""
        noise = step_noise((batch_size, *image_shape), seed, -1).numpy()
        return noise if self.start is None else self.start(noise)

    def sample(self, batch_size, seed=0, record=False):
        """The standard DDPM chain from `initial_noise` under the training schedule (see `sample_from`)."""
        x_start = self.initial_noise(batch_size, seed)
        return self.sample_from(x_start, self.train_betas, np.arange(self.num_timesteps), seed, record)

    def remaining_from(self, x_t, t, betas, seed=0, record=False):
        """Finishes the chain from x_t at training step t with `betas` replacing steps 0..t."""
        if not 0 <= t < self.num_timesteps:
            raise ValueError(f"step t={t} is past the schedule: valid are 0..{self.num_timesteps - 1}")
        return self.sample_from(x_t, betas, seed=seed, record=record)
