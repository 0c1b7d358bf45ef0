"""Beta schedules as plain functions: `name(timesteps) -> float64 array (timesteps,)` in (0, 1).

A schedule lists beta_t, the variance of the noise the forward process adds at step t
(t = 0 is the first, least noisy step). These follow the annotated-diffusion example.
"""

import math

import numpy as np


def linear_beta_schedule(timesteps, beta_start=1e-4, beta_end=0.02):
    """Betas rising linearly from `beta_start` to `beta_end` (Ho et al., 2020)."""
    return np.linspace(beta_start, beta_end, timesteps, dtype=np.float64)


def quadratic_beta_schedule(timesteps, beta_start=1e-4, beta_end=0.02):
    """Betas whose square roots rise linearly from sqrt(beta_start) to sqrt(beta_end)."""
    return np.linspace(beta_start**0.5, beta_end**0.5, timesteps, dtype=np.float64) ** 2


def sigmoid_beta_schedule(timesteps, beta_start=1e-4, beta_end=0.02):
    """Betas following a sigmoid over [-6, 6], scaled to [beta_start, beta_end]."""
    ramp = 1.0 / (1.0 + np.exp(-np.linspace(-6.0, 6.0, timesteps, dtype=np.float64)))
    return ramp * (beta_end - beta_start) + beta_start


def cosine_beta_schedule(timesteps, s=0.008):
    """Betas whose cumulative product follows cos^2 (Nichol & Dhariwal, 2021), clipped to 0.9999."""
    steps = np.linspace(0, timesteps, timesteps + 1, dtype=np.float64)
    alphas_cumprod = np.cos(((steps / timesteps) + s) / (1 + s) * math.pi * 0.5) ** 2
    alphas_cumprod = alphas_cumprod / alphas_cumprod[0]
    betas = 1.0 - (alphas_cumprod[1:] / alphas_cumprod[:-1])
    return np.clip(betas, 1e-4, 0.9999)


SCHEDULES = {
    "linear": linear_beta_schedule,
    "quadratic": quadratic_beta_schedule,
    "sigmoid": sigmoid_beta_schedule,
    "cosine": cosine_beta_schedule,
}


def get_schedule(name, timesteps):
    """Returns the betas (timesteps,) of the schedule called `name` (one of `SCHEDULES`)."""
    if name not in SCHEDULES:
        raise ValueError(f"Unknown beta schedule {name!r}; valid ones are {sorted(SCHEDULES)}")
    if int(timesteps) < 1:
        raise ValueError(f"timesteps must be a positive integer, got {timesteps}")
    return SCHEDULES[name](int(timesteps))


def check_betas(betas):
    """Returns `betas` as a float64 vector after checking every value lies in (0, 1)."""
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.size == 0:
        raise ValueError(f"betas must be a non-empty 1-D sequence, got shape {betas.shape}")
    bad = np.flatnonzero(~((betas > 0.0) & (betas < 1.0)))
    if bad.size:
        raise ValueError(
            f"every beta must lie in the open interval (0, 1); beta[{bad[0]}] = {float(betas[bad[0]])}"
        )
    return betas


def jump_betas(train_betas, t, num_jump_steps):
    """The betas that finish the reverse chain from training step `t` in `num_jump_steps` steps.

    The fairness rule of the jump experiment: the jump's betas sum to the sum of the training
    betas they replace, `train_betas[0..t]` (the steps still to undo at step t). They are equal,
    so each is `sum / num_jump_steps`, which must be below 1.

    Returns a float64 array (num_jump_steps,), in forward order like any schedule.
    """
    train_betas = check_betas(train_betas)
    if not 0 <= t < len(train_betas):
        raise ValueError(f"jump point t={t} is outside the schedule: valid are 0..{len(train_betas) - 1}")
    if num_jump_steps < 1:
        raise ValueError(f"num_jump_steps must be at least 1, got {num_jump_steps}")
    remainder = float(np.sum(train_betas[: t + 1]))
    beta = remainder / num_jump_steps
    if beta >= 1.0:
        raise ValueError(
            f"{num_jump_steps} jump steps from t={t} need beta = {remainder:.3f} / {num_jump_steps} "
            f"= {beta:.3f} >= 1; use at least {math.floor(remainder) + 1} steps"
        )
    return np.full(num_jump_steps, beta, dtype=np.float64)


def min_jump_steps(train_betas, t, max_beta=0.5):
    """The fewest equal jump steps from step `t` whose betas stay at or below `max_beta`."""
    remainder = float(np.sum(np.asarray(train_betas, np.float64)[: t + 1]))
    return max(1, math.ceil(remainder / max_beta - 1e-9))
