"""Edits -> files: the edit (.npz), its record (JSON) and a before/after image grid."""

import os

import numpy as np

from keras_sd_interp import io
from keras_sd_interp.reports.plotting.grids import image_grid_figure


def write_before_after(edit, prompts, before, after, output_dir, name="edit"):
    """Writes {name}.npz (the edit), {name}.json (its info) and {name}_before_after.png: for each
    prompt a row of `before` then `after` images (uint8 (P, S, H, W, 1) each). Returns paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {key: os.path.join(output_dir, f"{name}{suffix}") for key, suffix in
             (("edit", ".npz"), ("json", ".json"), ("grid", "_before_after.png"))}
    with io.atomic_path(paths["edit"]) as tmp:
        with open(tmp, "wb") as f:
            edit.save(f)
    io.save_json(paths["json"], dict(edit.info, prompts=list(prompts)))
    seeds = before.shape[1]
    images, titles = [], []
    for p, prompt in enumerate(prompts):
        for label, batch in (("before", before), ("after", after)):
            for s in range(seeds):
                images.append(batch[p, s])
                titles.append(f"{label}: {prompt}")
    figure = image_grid_figure(np.stack(images), titles, columns=2 * seeds, full_range=True)
    io.save_figure(paths["grid"], figure)
    return paths
