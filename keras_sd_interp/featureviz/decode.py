"""Latent -> uint8 image through the decoder.

`paper`: `(img * 127.5 + 127.5).astype('uint8')` with no clipping, so values outside [-1, 1]
wrap around; corrected: clip to [-1, 1] first, then round (`data.pixels.to_uint8`).
"""

import numpy as np

from keras_sd_interp.data.pixels import to_uint8


def decode_to_uint8(decoder, latents, mode, batch_size=16):
    """Decodes latents (n, h, w, 4) with `decoder` (latent -> image in [-1, 1]).

    Returns:
        uint8 (n, H, W, C).
    """
    latents = np.asarray(latents, np.float32)
    images = [
        np.asarray(decoder(latents[start : start + batch_size]))
        for start in range(0, len(latents), batch_size)
    ]
    return to_uint8(np.concatenate(images), mode)
