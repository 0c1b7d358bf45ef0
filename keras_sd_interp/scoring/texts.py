"""The scorers' shared arguments: images and texts."""

import numpy as np


def as_texts(texts, n):
    """`texts` (one string, or a list of n) -> list of n strings; ValueError on a length
    mismatch, TypeError for something that is neither."""
    if isinstance(texts, str):
        return [texts] * n
    texts = list(texts) if hasattr(texts, "__iter__") else None
    if texts is None or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"texts={texts!r}: give one string for all images or a list of {n} "
                        "strings")
    if len(texts) != n:
        raise ValueError(f"{len(texts)} texts for {n} images: give one text per image or one "
                         "text for all")
    return texts


def as_images(images):
    """`images` as uint8 (n, H, W, C); ValueError for another rank or dtype (a float image in
    0..1 would be read as 0..255 and score as black)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images of shape {images.shape}: give a batch (n, H, W, C) of uint8 "
                         "images (one image: images[None])")
    if images.dtype != np.uint8:
        raise ValueError(f"images are {images.dtype} (values {images.min() if images.size else 0}"
                         f"..{images.max() if images.size else 0}): the scorer reads uint8 0..255 "
                         "(e.g. pipe's .uint8(), or np.uint8(np.clip(x, 0, 1) * 255 + 0.5))")
    return images
