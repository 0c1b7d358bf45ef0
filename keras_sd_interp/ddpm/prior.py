"""Where the reverse chain starts: N(0, I), or a Gaussian that matches the forward process's end.

The annotated-diffusion schedule (T = 300 linear betas from 1e-4 to 0.02) stops at a-bar = 0.048:
its last noisy image x_{T-1} = 0.22 x_0 + 0.98 eps still holds a fifth of the clean image. The
model only ever sees such images at that step, but the example (and the course milestone) start
the chain from N(0, I): zero mean where the model expects the dim outline of an item on a dark
background (mean -0.43 x 0.22), and no correlation between pixels. Started there, the chain
favours large bright items: 1,000 samples of the 8-epoch model were 28% bags and 1% trousers.

`MatchedStart` starts instead from the Gaussian with the mean and covariance of q(x_{T-1}):

    x_{T-1} ~ N(sqrt(a-bar) mu, a-bar Sigma + (1 - a-bar) I)

mu (D,) and Sigma (D, D) being the mean and covariance of the training images (with their
horizontal flips, as in training). It is the closest Gaussian to what the model saw; with a
schedule that ends at pure noise (a-bar -> 0) it becomes N(0, I). Lin et al. (2024, "Common
diffusion noise schedules and sample steps are flawed") describe the same mismatch in Stable
Diffusion and fix it by retraining on a zero-terminal-SNR schedule; this fix needs no training.
"""

import numpy as np

STARTS = ("matched", "standard")


def data_moments(images):
    """Mean and covariance of images (N, H, W[, 1]) in model range and their horizontal flips.

    Returns (mean (D,), covariance (D, D)) as float64, D = H * W.
    """
    images = np.asarray(images, np.float64)
    flat = images.reshape(len(images), -1)
    flipped = images[:, :, ::-1].reshape(len(images), -1)
    both = np.concatenate([flat, flipped])
    return both.mean(axis=0), np.cov(both, rowvar=False)


class MatchedStart:
    """Maps standard normal noise to a sample of N(sqrt(a-bar) mu, a-bar Sigma + (1 - a-bar) I).

    mean (D,), covariance (D, D): the data moments; alpha_bar: a-bar of the chain's first
    step (the last training step). Called on noise (B, H, W, C) with H * W * C = D, it returns
    x_{T-1} of the same shape, float32.
    """

    name = "matched"

    def __init__(self, mean, covariance, alpha_bar):
        mean = np.asarray(mean, np.float64)
        covariance = np.asarray(covariance, np.float64)
        if not 0.0 <= alpha_bar < 1.0:
            raise ValueError(f"alpha_bar={alpha_bar!r} must be in [0, 1)")
        if covariance.shape != (mean.size, mean.size):
            raise ValueError(f"covariance has shape {covariance.shape}; the mean has {mean.size} "
                             f"entries, so it needs ({mean.size}, {mean.size})")
        self.alpha_bar = float(alpha_bar)
        self.mean = np.sqrt(alpha_bar) * mean
        self.cholesky = np.linalg.cholesky(
            alpha_bar * covariance + (1.0 - alpha_bar) * np.eye(mean.size))

    def __call__(self, noise):
        noise = np.asarray(noise)
        flat = noise.reshape(len(noise), -1).astype(np.float64)
        if flat.shape[1] != self.mean.size:
            raise ValueError(f"noise of shape {noise.shape} has {flat.shape[1]} values per image; "
                             f"this start has {self.mean.size}")
        return (self.mean + flat @ self.cholesky.T).reshape(noise.shape).astype(np.float32)


def ablation_starts(mean, covariance, alpha_bar):
    """Four starts, from N(0, I) to the full match, as MatchedStarts with other moments:
    {name: MatchedStart}. mean (D,), covariance (D, D): the data moments. Mean 0 and identity
    covariance give N(0, I); identity keeps only the shift; a diagonal, the per-pixel spread."""
    identity = np.eye(mean.size)
    return {
        "standard N(0, I)": MatchedStart(np.zeros_like(mean), identity, alpha_bar),
        "mean only": MatchedStart(mean, identity, alpha_bar),
        "mean and per-pixel variance": MatchedStart(mean, np.diag(np.diag(covariance)), alpha_bar),
        "matched (mean and covariance)": MatchedStart(mean, covariance, alpha_bar),
    }
