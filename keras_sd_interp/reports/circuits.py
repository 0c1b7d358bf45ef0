"""Files for circuits: circuits.json, filter images of every visualized step and the
connecting-kernel plots (the paper's Appendix A and B), named as the course named them, and the
branch-SVD scatter plot with its projections. Re-running skips what exists. Nothing here
computes: `experiments.circuits` runs the methods and hands their results to `CircuitFiles`."""

import os

import numpy as np
from PIL import Image

from keras_sd_interp import io
from keras_sd_interp.reports.featureviz import FilterFiles
from keras_sd_interp.reports.plotting.circuits import branch_svd_figure, weights_figure
from keras_sd_interp.reports.plotting.grids import image_grid_figure


def weights_name(pair):
    earlier, later = pair["earlier"], pair["later"]
    return (f"layer_{earlier['layer_index']}_filter_{earlier['filter']}_to_layer_"
            f"{later['layer_index']}_filter_{later['filter']}_weights.png")


def write_circuits_json(found, out_dir):
    """`found` (from `find_circuits`) as `out_dir/circuits.json`; returns the path."""
    path = os.path.join(out_dir, "circuits.json")
    io.save_json(path, found)
    return path


def write_weight_plots(pairs, out_dir, overwrite=False, dpi=100):
    """One `..._weights.png` per connecting-kernel pair (from `circuits.connecting_kernels`);
    returns the paths."""
    paths = []
    for pair in pairs:
        path = os.path.join(out_dir, weights_name(pair))
        paths.append(path)
        if overwrite or not io.image_is_valid(path):
            title = (f"layer {pair['earlier']['layer_index']} filter "
                     f"{pair['earlier']['filter']} -> layer {pair['later']['layer_index']} "
                     f"filter {pair['later']['filter']}")
            io.save_figure(path, weights_figure(pair["kernel"], title), dpi=dpi)
    return paths


def write_circuit_strips(ranks_and_stems, image_dir, out_dir):
    """Per circuit (rank, filter-image stems in walk order), its images in one figure
    (`circuit_{rank}.png`). Always redrawn (a few small figures): a resumed run may have
    recomputed a filter image."""
    paths = []
    for rank, stems in ranks_and_stems:
        path = os.path.join(out_dir, f"circuit_{rank}.png")
        paths.append(path)
        images = [np.asarray(Image.open(os.path.join(image_dir, stem + ".png"))) for stem in stems]
        images = [image[..., None] if image.ndim == 2 else image for image in images]
        titles = [stem.replace("_filter_", " f") for stem in stems]
        io.save_figure(path, image_grid_figure(images, titles, columns=8), dpi=40)
    return paths


class CircuitFiles:
    """The files of `scripts/find_circuits.py --visualize` under `out_dir`: circuits.json, the
    filter images (`filters/`, a `FilterFiles`), the weight plots (`weights/`) and one strip
    per circuit."""

    def __init__(self, out_dir, overwrite=False, dpi=100, loss_plots=True):
        self.out_dir, self.overwrite, self.dpi = out_dir, overwrite, dpi
        self.image_dir = os.path.join(out_dir, "filters")
        self.filters = FilterFiles(self.image_dir, overwrite, loss_plots)

    def write_json(self, found):
        return write_circuits_json(found, self.out_dir)

    def write_weights(self, pairs):
        return write_weight_plots(pairs, os.path.join(self.out_dir, "weights"), self.overwrite,
                                  self.dpi)

    def write_strips(self, ranks_and_stems):
        return write_circuit_strips(ranks_and_stems, self.image_dir, self.out_dir)


def save_branch_svd(result, stem, conv_a, conv_b, marked_a=(), marked_b=(), title=None,
                    overwrite=True):
    """A BranchSVD as `{stem}_left.npy`, `{stem}_right.npy` and the two scatter plots
    `{stem}.png` (kept if it exists, unless `overwrite`); returns the PNG's path."""
    io.save_npy(stem + "_left.npy", result.left)
    io.save_npy(stem + "_right.npy", result.right)
    figure_path = stem + ".png"
    if overwrite or not io.image_is_valid(figure_path):
        figure = branch_svd_figure(result.left, result.right, conv_a, conv_b, marked_a, marked_b,
                                   title=title)
        io.save_figure(figure_path, figure)
    return figure_path


def branch_svd_stem(out_dir, mode, conv_a, conv_b):
    """Where `save_branch_svd` writes a run of scripts/branch_svd.py (no extension)."""
    return os.path.join(out_dir, f"branch_svd_{mode}_conv_{conv_a}_conv_{conv_b}")
