"""The paper's pipeline end to end: circuits -> filter images -> weight plots -> branch SVD,
into one folder with an `index.md` saying what each figure is and which paper figure it stands
for. Every stage skips files already on disk, so an interrupted run resumes; with `overwrite`
the previous run's outputs are removed first, so figures of circuits that a new model no longer
has do not linger."""

import glob
import os
import shutil

from keras_sd_interp import io
from keras_sd_interp.circuits.branch_svd import branch_filters, branch_svd
from keras_sd_interp.circuits.walk import find_circuits
from keras_sd_interp.featureviz import conv_target
from keras_sd_interp.reports.circuits import save_branch_svd, write_circuit_figures
from keras_sd_interp.reports.featureviz import visualize_filters


def write_branch_figures(unet, decoder, settings, out_dir, conv_a=9, conv_b=38, concat=True,
                         batch_size=16, overwrite=False, progress=True):
    """The branch-SVD scatter plot, its projections (.npz) and images of the marked filters.

    Marked filters are visualized as the course did (`BRANCH_SPECIALIZATION_...`): conv a's
    filters on conv a, and conv b's side points (conv b's input channels = conv a's filters)
    also on conv a, whose output they read.
    """
    result = branch_svd(unet, conv_a, conv_b, settings.mode, concat)
    marked_a, marked_b = branch_filters(result)
    stem = os.path.join(out_dir, f"branch_svd_conv_{conv_a}_conv_{conv_b}")
    figure_path = save_branch_svd(result, stem, conv_a, conv_b, marked_a, marked_b,
                                  title=f"{settings.mode} mode, channels {result.channels}",
                                  overwrite=overwrite)
    targets = [conv_target(unet, conv_a, f, settings.mode) for f in marked_a + marked_b]
    image_dir = os.path.join(out_dir, "branch_filters")
    visualize_filters(unet, decoder, targets, settings, image_dir, batch_size, overwrite,
                      progress, loss_plots=False)
    return {"figure": figure_path, "marked_a": marked_a, "marked_b": marked_b,
            "images": [os.path.join(image_dir, t.stem + ".png") for t in targets]}


def index_text(found, branch, settings, model):
    """The markdown index of a reproduce run."""
    lines = [
        f"# The paper's figures, regenerated ({model} model, {settings.mode} mode)",
        "",
        f"Latent descent: {settings.steps} steps, eta {settings.learning_rate}, seed "
        f"{settings.seed}, {settings.direction}"
        + ("" if settings.mode == "paper" else f", timestep {settings.timestep}") + ".",
        "",
        "| file | what it is | paper figure |",
        "|---|---|---|",
        "| `circuits.json` | the top-5 circuits walked back from conv 51 (conv index, layer, "
        "name, filter, kernel strength per step) | the circuits of Methods/Results |",
    ]
    for circuit in found["circuits"]:
        seed = circuit["seed"]
        lines.append(
            f"| `circuit_{circuit['rank']}.png` | filter images of circuit {circuit['rank']} "
            f"(seed: channel {seed['channel']} of filter {seed['filter']}), output side first |"
            + (" Appendix A (the 2nd best circuit) |" if circuit["rank"] == 1 else " Appendix A |")
        )
    lines += [
        "| `filters/layer_L_filter_F.png` | one filter's image, `_latent.npy` its final latent,"
        " `_loss.npy` its objective per step | Appendix A panels |",
        "| `weights/layer_A_filter_F_to_layer_B_filter_G_weights.png` | the kernel connecting "
        "two visualized filters of a circuit"
        + (" (3x3 matmul through the ResBlock, as the course did)" if settings.mode == "paper"
           else " (exact 5x5 composition through the ResBlock's hidden channel)")
        + " | Appendix B |",
        f"| `{os.path.basename(branch['figure'])}` | branch-specialization SVD, left: conv a's "
        f"side, right: conv b's side; red: filters {branch['marked_a']} / {branch['marked_b']} |"
        " the branch-specialization scatter plots (\"layers 9 and 38\") |",
        "| `branch_filters/` | images of the marked filters | the BRANCH_SPECIALIZATION images |",
        "",
    ]
    stopped = [c for c in found["circuits"] if c.get("stopped")]
    for circuit in stopped:
        lines.append(f"Circuit {circuit['rank']} stopped early: {circuit['stopped']}.")
    return "\n".join(lines) + "\n"


OUTPUT_FOLDERS = ("filters", "weights", "branch_filters")
OUTPUT_PATTERNS = ("circuit_*.png", "circuits.json", "branch_svd_conv_*", "index.md")


def clear_outputs(out_dir):
    """Removes what a reproduce run writes in `out_dir` (its folders and named files only);
    returns the number of paths removed. Other files in `out_dir` stay."""
    paths = [os.path.join(out_dir, folder) for folder in OUTPUT_FOLDERS]
    paths += [p for pattern in OUTPUT_PATTERNS for p in glob.glob(os.path.join(out_dir, pattern))]
    removed = 0
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        else:
            continue
        removed += 1
    return removed


def reproduce_paper(unet, decoder, settings, out_dir, model="tiny", top_k=5, batch_size=16,
                    overwrite=False, progress=True):
    """Runs the whole pipeline into `out_dir`; returns the path of `index.md`.

    With `overwrite`, the previous run's outputs are removed first (`clear_outputs`)."""
    if overwrite:
        clear_outputs(out_dir)
    found = find_circuits(unet, top_k, settings.mode)
    write_circuit_figures(unet, decoder, found, settings, out_dir, batch_size, overwrite,
                          progress, dpi=30, loss_plots=False)
    branch = write_branch_figures(unet, decoder, settings, out_dir, batch_size=batch_size,
                                  overwrite=overwrite, progress=progress)
    index_path = os.path.join(out_dir, "index.md")
    io.save_text(index_path, index_text(found, branch, settings, model))
    return index_path
