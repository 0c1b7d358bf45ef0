"""Where the latent starts.

`paper`: the course's `np.random.random((1, h, w, 4)) * 20 + 128`, held as float64 (far outside
anything the decoder saw in training). Corrected: N(0, 1) in float32, the distribution of the
(scaled) latents the decoder was trained on.

Every item of a batch starts from the same draw of `seed`, so a filter optimized in a batch of
16 starts exactly where it would alone.
"""

import numpy as np


def initial_latents(mode, latent_shape, batch_size, seed):
    """Starting latents, (batch_size,) + latent_shape: float64 (paper) or float32 (corrected)."""
    rng = np.random.default_rng(seed)
    if mode == "paper":
        one = rng.random((1,) + tuple(latent_shape)) * 20 + 128
    else:
        one = rng.standard_normal((1,) + tuple(latent_shape)).astype(np.float32)
    return np.repeat(one, batch_size, axis=0)
