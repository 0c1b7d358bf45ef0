"""Files for circuits: circuits.json, filter images of every visualized step and the
connecting-kernel plots (the paper's Appendix A and B), named as the course named them, and the
branch-SVD scatter plot with its projections. Re-running skips what exists."""

import os

import numpy as np
from PIL import Image

from keras_sd_interp import io
from keras_sd_interp.circuits.branch_svd import branch_svd
from keras_sd_interp.circuits.kernels import connecting_kernels
from keras_sd_interp.circuits.walk import main_path, visualized_steps
from keras_sd_interp.featureviz import conv_target
from keras_sd_interp.lens import taps
from keras_sd_interp.reports.featureviz import visualize_filters
from keras_sd_interp.reports.plotting.circuits import branch_svd_figure, weights_figure
from keras_sd_interp.reports.plotting.grids import image_grid_figure


def step_target(unet, step, mode):
    """The FilterTarget of a circuit step: the whole layer (paper) or the conv itself."""
    return conv_target(unet, step["conv_index"], step["filter"], mode)


def circuit_targets(unet, found):
    """Every visualized step of every circuit in `found` (from `find_circuits`), deduplicated."""
    mode = found["mode"]
    targets = [
        step_target(unet, step, mode)
        for circuit in found["circuits"]
        for step in visualized_steps(circuit["steps"], mode)
    ]
    return list(dict.fromkeys(targets))


def weights_name(pair):
    earlier, later = pair["earlier"], pair["later"]
    return (f"layer_{earlier['layer_index']}_filter_{earlier['filter']}_to_layer_"
            f"{later['layer_index']}_filter_{later['filter']}_weights.png")


def write_circuits_json(found, out_dir):
    """`found` (from `find_circuits`) as `out_dir/circuits.json`; returns the path."""
    path = os.path.join(out_dir, "circuits.json")
    io.save_json(path, found)
    return path


def write_weight_plots(unet, found, out_dir, hidden="circuit", overwrite=False, dpi=100):
    """One `..._weights.png` per consecutive pair of every circuit; returns the paths."""
    paths = []
    for circuit in found["circuits"]:
        for pair in connecting_kernels(unet, main_path(circuit["steps"]), found["mode"], hidden):
            path = os.path.join(out_dir, weights_name(pair))
            paths.append(path)
            if overwrite or not io.image_is_valid(path):
                title = (f"layer {pair['earlier']['layer_index']} filter "
                         f"{pair['earlier']['filter']} -> layer {pair['later']['layer_index']} "
                         f"filter {pair['later']['filter']}")
                io.save_figure(path, weights_figure(pair["kernel"], title), dpi=dpi)
    return paths


def write_circuit_strips(unet, found, image_dir, out_dir, overwrite=False):
    """Per circuit, its filter images in walk order in one figure (`circuit_{rank}.png`).

    Always redrawn (a few small figures): a resumed run may have recomputed a filter image."""
    paths = []
    for circuit in found["circuits"]:
        path = os.path.join(out_dir, f"circuit_{circuit['rank']}.png")
        paths.append(path)
        steps = visualized_steps(circuit["steps"], found["mode"])
        stems = [step_target(unet, step, found["mode"]).stem for step in steps]
        images = [np.asarray(Image.open(os.path.join(image_dir, stem + ".png"))) for stem in stems]
        images = [image[..., None] if image.ndim == 2 else image for image in images]
        titles = [stem.replace("_filter_", " f") for stem in stems]
        io.save_figure(path, image_grid_figure(images, titles, columns=8), dpi=40)
    return paths


def write_circuit_figures(unet, decoder, found, settings, out_dir, batch_size=16,
                          overwrite=False, progress=True, dpi=100, loss_plots=True):
    """circuits.json, the filter images (`filters/`), the weight plots (`weights/`) and one
    strip per circuit. Returns a dict of what was written, by kind."""
    write_circuits_json(found, out_dir)
    image_dir = os.path.join(out_dir, "filters")
    visualize_filters(unet, decoder, circuit_targets(unet, found), settings, image_dir,
                      batch_size, overwrite, progress, loss_plots)
    return {
        "weights": write_weight_plots(unet, found, os.path.join(out_dir, "weights"),
                                      overwrite=overwrite, dpi=dpi),
        "strips": write_circuit_strips(unet, found, image_dir, out_dir, overwrite),
    }


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


def check_marks(unet, conv_a, marked_a=(), marked_b=()):
    """Raises ValueError naming the marks that index no point of the branch plots (one point
    per filter of conv `conv_a` on each)."""
    check_mark_range(taps.conv_kernel(unet, conv_a).shape[-1], conv_a, marked_a, marked_b)


def check_mark_range(count, conv_a, marked_a=(), marked_b=()):
    """Raises ValueError naming the marks outside 0..count-1 (`count` filters of conv_a)."""
    for side, marks in ((f"conv {conv_a}'s side", marked_a), ("the other side", marked_b)):
        bad = [int(i) for i in marks if not 0 <= int(i) < count]
        if bad:
            raise ValueError(f"marks {bad} on {side} out of range: conv {conv_a} has filters "
                             f"0..{count - 1}, one point each on both plots")


def write_branch_svd(unet, conv_a, conv_b, out_dir, mode="corrected", concat=True, variant="tf",
                     marked_a=(), marked_b=()):
    """`branch_svd` between two convs, saved as `branch_svd_{mode}_conv_{a}_conv_{b}` (.png and
    the projections); returns (BranchSVD, the PNG's path)."""
    check_marks(unet, conv_a, marked_a, marked_b)
    result = branch_svd(unet, conv_a, conv_b, mode, concat, variant)
    stem = os.path.join(out_dir, f"branch_svd_{mode}_conv_{conv_a}_conv_{conv_b}")
    path = save_branch_svd(
        result, stem, conv_a, conv_b, marked_a, marked_b,
        title=f"{mode} mode, conv {conv_b} input channels {result.channels}",
    )
    return result, path
