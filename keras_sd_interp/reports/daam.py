"""DAAM figures: overlays per word, a grid of all words, small multiples per layer and per head,
a GIF over the steps. matplotlib + Pillow; every file written atomically (`keras_sd_interp.io`).

File names follow `reports.paths.prompt_figure_path`: figures/daam/a_sneaker_and_a_bag_seed0_bag.png,
..._words.png, ..._bag_layers.png, ..._bag_heads.png, ..._bag_steps.gif.
"""

import os

import numpy as np

from keras_sd_interp import io
from keras_sd_interp.reports.paths import prompt_figure_path, safe_name

CMAP = "jet"
ALPHA = 0.5


def figure_path(folder, prompt, seed, word=None, kind=None, ext=".png", tag=None, name=None):
    """{folder}/{prompt}_seed{seed}[_word][_kind][_tag]{ext}; tag "rollout" for text rollout.
    The prompt and the word pass through `safe_name` (`name`, when given, replaces the
    prompt's), so the path stays inside `folder` whatever the text."""
    base = os.path.splitext(prompt_figure_path(prompt, seed, folder, name))[0]
    parts = [base] + [p for p in (word and safe_name(word), kind, tag) if p]
    return "_".join(parts) + ext


def _gray(image):
    image = np.asarray(image)
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def _show(ax, image, heat_map=None):
    """The image, and over it the heat map min-max normalised (as DAAM plots, and as the tau
    mask sees it); the raw range goes in the titles."""
    from keras_sd_interp.attribution.daam import normalize

    image = _gray(image)
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    artist = None
    if heat_map is not None:
        artist = ax.imshow(normalize(heat_map), cmap=CMAP, alpha=ALPHA, vmin=0, vmax=1,
                           interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    return artist


def overlay_figure(image, heat_map, word, mask=None):
    """Image | heat map over the image with a colour bar (| mask outline when given)."""
    import matplotlib.pyplot as plt

    height, width = heat_map.shape
    panels = 3 if mask is not None else 2
    scale = 3.0 / max(height, width) * 2
    fig, axes = plt.subplots(1, panels, figsize=(panels * width * scale, height * scale + 0.6))
    _show(axes[0], image)
    axes[0].set_title("image")
    artist = _show(axes[1], image, heat_map)
    axes[1].set_title(f"'{word}' (raw {heat_map.min():.3g}..{heat_map.max():.3g})")
    bar = fig.colorbar(artist, ax=axes[1], fraction=0.046 * height / width, pad=0.02)
    bar.set_label("min-max normalised", fontsize=8)
    if mask is not None:
        _show(axes[2], image)
        axes[2].imshow(np.ma.masked_where(~mask, mask.astype(float)), cmap="autumn", alpha=0.55,
                       vmin=0, vmax=1, interpolation="nearest")
        axes[2].set_title("mask (tau on the normalised map)")
    return fig


def save_overlay(path, image, heat_map, word, mask=None):
    io.save_figure(path, overlay_figure(image, heat_map, word, mask), dpi=120)
    return path


def grid_figure(image, heat_maps, title=None, labels=None, columns=None):
    """The image then one overlay per map. heat_maps: dict label -> (H, W) or an array (k, H, W)
    with `labels`."""
    import matplotlib.pyplot as plt

    if isinstance(heat_maps, dict):
        labels, maps = list(heat_maps), [heat_maps[k] for k in heat_maps]
    else:
        maps = list(heat_maps)
    count = len(maps) + 1
    columns = columns or min(count, 6)
    rows = -(-count // columns)
    height, width = maps[0].shape
    scale = 2.2 / max(height, width) * 2
    fig, axes = plt.subplots(rows, columns, figsize=(columns * width * scale,
                                                     rows * (height * scale + 0.35)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    _show(axes.flat[0], image)
    axes.flat[0].set_title("image", fontsize=9)
    for ax, label, heat_map in zip(axes.flat[1:], labels, maps):
        _show(ax, image, heat_map)
        ax.set_title(f"{label} ({heat_map.min():.2g}..{heat_map.max():.2g})", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_grid(path, image, heat_maps, title=None, labels=None, columns=None):
    io.save_figure(path, grid_figure(image, heat_maps, title, labels, columns), dpi=120)
    return path


def comparison_figure(rows, title=None):
    """One row per (label, image, {word: (H, W) map}): the image then each word's map over it;
    e.g. the same prompt and seed under two models, row after row."""
    import matplotlib.pyplot as plt

    columns = 1 + max(len(maps) for _, _, maps in rows)
    height, width = np.asarray(rows[0][1]).shape[:2]
    scale = 2.2 / max(height, width) * 2
    fig, axes = plt.subplots(len(rows), columns, squeeze=False, layout="constrained",
                             figsize=(columns * width * scale, len(rows) * (height * scale + 0.4)))
    for ax in axes.flat:
        ax.axis("off")
    for ax_row, (label, image, maps) in zip(axes, rows):
        _show(ax_row[0], image)
        ax_row[0].set_title(label, fontsize=8)
        for ax, (word, heat_map) in zip(ax_row[1:], maps.items()):
            _show(ax, image, heat_map)
            ax.set_title(f"'{word}'", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def save_comparison(path, rows, title=None):
    io.save_figure(path, comparison_figure(rows, title), dpi=120)
    return path


def gif_frames(image, frames, scale=4):
    """Colour frames (steps, H, W) -> uint8 RGB (steps, H*scale, W*scale, 3): each frame's
    map min-max normalised, coloured and blended over the image."""
    import matplotlib

    from keras_sd_interp.attribution.daam import normalize

    gray = _gray(image).astype(np.float32) / 255.0
    base = np.repeat(gray[..., None], 3, -1) if gray.ndim == 2 else gray
    colours = matplotlib.colormaps[CMAP](normalize(frames))[..., :3]
    blended = (1 - ALPHA) * base[None] + ALPHA * colours
    out = (np.clip(blended, 0, 1) * 255).astype(np.uint8)
    return out.repeat(scale, 1).repeat(scale, 2)


def save_steps_gif(path, image, frames, duration_ms=150):
    io.save_gif(path, list(gif_frames(image, frames)), duration_ms=duration_ms)
    return path


def write_image_report(heat_maps, image, folder, seed, tau=0.4, frames=None, name=None):
    """All DAAM files for one image: per word an overlay with its tau mask, per-layer and
    per-head small multiples, a GIF over steps (when `frames` has the word's); then a grid of
    all words. heat_maps: a `daam.HeatMaps`; image: uint8 (H, W[, C]); frames: optional
    {word: (steps, H, W)} from `DAAMTrace.per_step`; name: the file-name stem in place of the
    prompt's (one of `reports.paths.unique_names` when a run has repeated prompts).
    Returns the written paths."""
    from keras_sd_interp.attribution.daam import mask

    maps = heat_maps.global_maps()
    tag, method = ("rollout", "DAAM + text rollout") if heat_maps.text_rollout else (None, "DAAM")

    def path(word=None, kind=None, ext=".png"):
        return figure_path(folder, heat_maps.prompt, seed, word, kind, ext, tag, name)

    paths = []
    for word, heat_map in maps.items():
        paths.append(save_overlay(path(word), image, heat_map, word, mask(heat_map, tau)))
        per_layer, layer_ids = heat_maps.per_layer(word)
        paths.append(save_grid(path(word, "layers"), image, per_layer,
                               f"{method}: '{word}' per layer", [f"layer {i}" for i in layer_ids]))
        per_head, head_ids = heat_maps.per_head(word)
        paths.append(save_grid(path(word, "heads"), image, per_head,
                               f"{method}: '{word}' per head", [f"head {i}" for i in head_ids]))
        if frames is not None:
            paths.append(save_steps_gif(path(word, "steps", ".gif"), image, frames[word]))
    paths.append(save_grid(path(None, "words"), image, maps, f"{method}: '{heat_maps.prompt}'"))
    return paths
