"""Captioned compositions of Fashion-MNIST items: the bundled text-to-image model's data.

Two kinds of 32x64 grayscale images (each 28x28 item padded to 32x32 on a black canvas):
- pairs: two items side by side, captioned "a {left} and a {right}";
- singles: one item in the middle, captioned "a {item}".
Every word names a place in the image, which is what DAAM and causal tracing are tested on.
"""

import numpy as np

from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

HEIGHT, WIDTH = 32, 64
ITEM_SIZE = 28
CELL = 32  # each item sits in a 32x32 cell, 2 px of black around it
MARGIN = (CELL - ITEM_SIZE) // 2


def pair_caption(left_class, right_class):
    return f"a {CLASS_NAMES[left_class]} and a {CLASS_NAMES[right_class]}"


def single_caption(item_class):
    return f"a {CLASS_NAMES[item_class]}"


def compose_pairs(left_items, right_items):
    """Items (N, 28, 28) uint8 left and right -> images (N, 32, 64) uint8."""
    canvas = np.zeros((len(left_items), HEIGHT, WIDTH), np.uint8)
    canvas[:, MARGIN:MARGIN + ITEM_SIZE, MARGIN:MARGIN + ITEM_SIZE] = left_items
    right = CELL + MARGIN
    canvas[:, MARGIN:MARGIN + ITEM_SIZE, right:right + ITEM_SIZE] = right_items
    return canvas


def compose_singles(items):
    """Items (N, 28, 28) uint8 -> images (N, 32, 64) uint8 with the item in the middle."""
    canvas = np.zeros((len(items), HEIGHT, WIDTH), np.uint8)
    left = (WIDTH - ITEM_SIZE) // 2
    canvas[:, MARGIN:MARGIN + ITEM_SIZE, left:left + ITEM_SIZE] = items
    return canvas


def sample_batch(images, labels, rng, batch_size, single_share=0.25):
    """A random batch of captioned compositions.

    Args:
        images: uint8 (N, 28, 28) Fashion-MNIST items; labels: int (N,).
        rng: np.random.Generator.
        batch_size: number of compositions.
        single_share: probability that a composition is a single item.

    Returns:
        images uint8 (batch, 32, 64) and a list of `batch_size` captions.
    """
    left = rng.integers(0, len(images), batch_size)
    right = rng.integers(0, len(images), batch_size)
    single = rng.random(batch_size) < single_share
    composed = compose_pairs(images[left], images[right])
    composed[single] = compose_singles(images[left[single]])
    captions = [
        single_caption(labels[i]) if s else pair_caption(labels[i], labels[j])
        for i, j, s in zip(left, right, single)
    ]
    return composed, captions


def halves(images):
    """The two item cells of pair images (N, 32, 64[, 1]) as judge-sized crops.

    Returns:
        left, right: (N, 28, 28) arrays, same dtype as `images`.
    """
    images = images[..., 0] if images.ndim == 4 else images
    rows = slice(MARGIN, MARGIN + ITEM_SIZE)
    right = CELL + MARGIN
    return (images[:, rows, MARGIN:MARGIN + ITEM_SIZE], images[:, rows, right:right + ITEM_SIZE])


def middle(images):
    """The middle 28x28 crop of single-item images (N, 32, 64[, 1]) -> (N, 28, 28)."""
    images = images[..., 0] if images.ndim == 4 else images
    left = (WIDTH - ITEM_SIZE) // 2
    return images[:, MARGIN:MARGIN + ITEM_SIZE, left:left + ITEM_SIZE]
