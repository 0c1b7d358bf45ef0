"""Latent -> uint8 image through the decoder.

`paper`: `(img * 127.5 + 127.5).astype('uint8')` with no clipping, so values outside [-1, 1]
wrap around (truncation toward zero, then modulo 256, which is what the cast does on x86).
Corrected: clip to [-1, 1] first, then round.
"""

import numpy as np


def to_uint8(images, mode):
    """images in about [-1, 1] (any shape) -> uint8 of the same shape."""
    scaled = np.asarray(images, np.float64) * 127.5 + 127.5
    if mode == "paper":
        return (np.trunc(scaled).astype(np.int64) % 256).astype(np.uint8)
    return np.round(np.clip(scaled, 0, 255)).astype(np.uint8)


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
