"""Captioned compositions of Fashion-MNIST items: the bundled text-to-image model's data.

Two kinds of 32x64 grayscale images (each 28x28 item padded to 32x32 on a black canvas):
- pairs: two items side by side, captioned "a {left} and a {right}";
- singles: one item in the middle, captioned "a {item}".
Every word names a place in the image, which is what DAAM and causal tracing are tested on.

Caption styles (`sample_batch(..., captions=...)`):
- "plain": pairs always "a {left} and a {right}" (the first tiny model's data);
- "spatial": half of the pairs "a {left} and a {right}" (still: first named = left), a quarter
  "a {left} on the left and a {right} on the right", a quarter "a {right} on the right and a
  {left} on the left", so that word order alone no longer tells the half (the tiny CLIP's and
  its U-Net's data). Singles are "a {item}" in both.
- "layout_first": half of the pairs "a {left} and a {right}", a quarter "on the left a {left}
  and on the right a {right}", a quarter "on the right a {right} and on the left a {left}": the
  place comes before the item, so in a causal text tower each item's own token has already
  read where it goes (in "spatial" the first-named item's token cannot know its half).
"""

import numpy as np

from keras_sd_interp.data.fashion_mnist import CLASS_NAMES

HEIGHT, WIDTH = 32, 64
ITEM_SIZE = 28
CELL = 32  # each item sits in a 32x32 cell, 2 px of black around it
MARGIN = (CELL - ITEM_SIZE) // 2


def pair_caption(left_class, right_class):
    return f"a {CLASS_NAMES[left_class]} and a {CLASS_NAMES[right_class]}"


def left_right_caption(left_class, right_class):
    return f"a {CLASS_NAMES[left_class]} on the left and a {CLASS_NAMES[right_class]} on the right"


def right_left_caption(left_class, right_class):
    return f"a {CLASS_NAMES[right_class]} on the right and a {CLASS_NAMES[left_class]} on the left"


def left_first_caption(left_class, right_class):
    return f"on the left a {CLASS_NAMES[left_class]} and on the right a {CLASS_NAMES[right_class]}"


def right_first_caption(left_class, right_class):
    return f"on the right a {CLASS_NAMES[right_class]} and on the left a {CLASS_NAMES[left_class]}"


PAIR_FORMS = {"and": pair_caption, "left_right": left_right_caption,
              "right_left": right_left_caption, "left_first": left_first_caption,
              "right_first": right_first_caption}
CAPTION_STYLES = {"plain": {"and": 1.0},
                  "spatial": {"and": 0.5, "left_right": 0.25, "right_left": 0.25},
                  "layout_first": {"and": 0.5, "left_first": 0.25, "right_first": 0.25}}
CAPTION_EXAMPLES = {"and": "'a X and a Y' (X left)", "left_right": "'a X on the left and a Y on "
                    "the right'", "right_left": "'a Y on the right and a X on the left'",
                    "left_first": "'on the left a X and on the right a Y'",
                    "right_first": "'on the right a Y and on the left a X'"}
SPATIAL_WORDS = ("on", "the", "left", "right")


def single_caption(item_class):
    return f"a {CLASS_NAMES[item_class]}"


def describe_captions(style):
    """The pair captions of a style in words, for training records: e.g. "pair captions half
    'a X and a Y' (X left), a quarter 'on the left a X and on the right a Y', ..."."""
    check_caption_style(style)
    shares = {1.0: "all", 0.5: "half", 0.25: "a quarter"}
    parts = [f"{shares[share]} {CAPTION_EXAMPLES[form]}"
             for form, share in CAPTION_STYLES[style].items()]
    return "pair captions " + ", ".join(parts)


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


def indexed_pairs(images, labels, indices):
    """Fixed real compositions of a split: composition k is item 2k on the left and item
    2k + 1 on the right, captioned "a {left} and a {right}" (the same every time, so
    `--fashion_mnist_index=k` names one image).

    Args: images uint8 (N, 28, 28), labels (N,), indices: ints in 0..N // 2 - 1.
    Returns: uint8 (k, 32, 64), k captions, int (k, 2) the (left, right) labels.
    """
    indices = np.asarray(indices, np.int64).reshape(-1)
    if len(indices) == 0 or indices.min() < 0 or indices.max() >= len(images) // 2:
        raise ValueError(f"composition indices {indices.tolist()}: use 0..{len(images) // 2 - 1} "
                         f"({len(images)} items make {len(images) // 2} pairs)")
    pair_labels = np.stack([labels[2 * indices], labels[2 * indices + 1]], 1)
    captions = [pair_caption(a, b) for a, b in pair_labels]
    return compose_pairs(images[2 * indices], images[2 * indices + 1]), captions, pair_labels


def check_caption_style(style):
    if style not in CAPTION_STYLES:
        raise ValueError(f"unknown caption style {style!r}: choose one of {sorted(CAPTION_STYLES)}")


def sample_batch(images, labels, rng, batch_size, single_share=0.25, captions="plain",
                 return_meanings=False):
    """A random batch of captioned compositions.

    Args:
        images: uint8 (N, 28, 28) Fashion-MNIST items; labels: int (N,).
        rng: np.random.Generator.
        batch_size: number of compositions.
        single_share: probability that a composition is a single item.
        captions: caption style, one of `CAPTION_STYLES` (see the module docstring). With "plain"
            the random draws are exactly those of the first tiny model's data.
        return_meanings: also return what each image shows as an int (batch,): left * 10 +
            right for pairs, 100 + item for singles (equal for captions of the same image).

    Returns:
        images uint8 (batch, 32, 64), a list of `batch_size` captions (and the meanings).
    """
    check_caption_style(style=captions)
    left = rng.integers(0, len(images), batch_size)
    right = rng.integers(0, len(images), batch_size)
    single = rng.random(batch_size) < single_share
    forms = _pair_forms(rng, batch_size, CAPTION_STYLES[captions])
    composed = compose_pairs(images[left], images[right])
    composed[single] = compose_singles(images[left[single]])
    texts = [
        single_caption(labels[i]) if s else PAIR_FORMS[form](labels[i], labels[j])
        for i, j, s, form in zip(left, right, single, forms)
    ]
    if not return_meanings:
        return composed, texts
    meanings = np.where(single, 100 + labels[left], 10 * labels[left] + labels[right])
    return composed, texts, meanings.astype(np.int64)


def _pair_forms(rng, batch_size, shares):
    """Pair caption form per composition; no draw at all for a single form (keeps old seeds)."""
    names = list(shares)
    if len(names) == 1:
        return names * batch_size
    return [names[k] for k in rng.choice(len(names), batch_size, p=list(shares.values()))]


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
