"""Images in [-1, 1] (what the models give and take) to uint8 pixels: the one conversion.

`corrected` (the default): clip to [-1, 1], scale to [0, 255] and round to nearest, computed in
float64 (exact for float32 input).
`paper`: the course code's `(img * 127.5 + 127.5).astype('uint8')` with no clipping, so values
outside [-1, 1] wrap around (truncation toward zero, then modulo 256, which is what the cast does
on x86).
"""

import numpy as np

MODES = ("paper", "corrected")


def to_uint8(images, mode="corrected"):
    """images in about [-1, 1] (any shape, any float dtype) -> uint8 of the same shape."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    scaled = np.asarray(images, np.float64) * 127.5 + 127.5
    if mode == "paper":
        return (np.trunc(scaled).astype(np.int64) % 256).astype(np.uint8)
    return np.round(np.clip(scaled, 0, 255)).astype(np.uint8)
