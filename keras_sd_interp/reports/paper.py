"""The paper's pipeline end to end: circuits -> filter images -> weight plots -> branch SVD,
into one folder with a page to open (`index.html`, made with Jinja2) and `index.md` for GitHub.

Every circuit step is shown three ways: the paper mode's image (the course loop, bug for bug),
and the corrected method's images, descent and ascent, with the connecting kernel beside them.

Resume: the run's settings are recorded in `settings.json`; a run into a folder that holds
another run's settings refuses (`SettingsChanged` names the flag and both values). Every stage
skips files already on disk that decode (`io.image_is_valid`), so an interrupted run resumes and
a zero-byte or corrupt PNG is recomputed; with `overwrite` the previous run's outputs are
removed first, so figures of circuits that a new model no longer has do not linger.
"""

import dataclasses
import glob
import json
import os
import shutil

from keras_sd_interp import io
from keras_sd_interp.circuits.branch_svd import branch_filters, branch_svd
from keras_sd_interp.circuits.kernels import connecting_kernels
from keras_sd_interp.circuits.walk import find_circuits, main_path, visualized_steps
from keras_sd_interp.featureviz import DescentSettings, conv_target
from keras_sd_interp.reports.circuits import (save_branch_svd, step_target, weights_name,
                                              write_circuit_figures)
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


CORRECTED_DESCENT_DIR = "corrected_descent"
CORRECTED_ASCENT_DIR = "corrected_ascent"
TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")


def corrected_targets(unet, found):
    """The corrected-mode target of every step the paper mode visualizes (deduplicated): the
    same conv and filter, tapped at the conv itself (`res_block_N.conv2`), not the layer."""
    targets = [
        conv_target(unet, step["conv_index"], step["filter"], "corrected")
        for circuit in found["circuits"]
        for step in visualized_steps(circuit["steps"], found["mode"])
    ]
    return list(dict.fromkeys(targets))


def write_corrected_figures(unet, decoder, found, corrected, out_dir, batch_size=16,
                            overwrite=False, progress=True):
    """Corrected descent and ascent images of every visualized step, in
    `corrected_descent/` and `corrected_ascent/`."""
    targets = corrected_targets(unet, found)
    for direction, folder in (("descent", CORRECTED_DESCENT_DIR),
                              ("ascent", CORRECTED_ASCENT_DIR)):
        settings = dataclasses.replace(corrected, direction=direction)
        visualize_filters(unet, decoder, targets, settings, os.path.join(out_dir, folder),
                          batch_size, overwrite, progress, loss_plots=False)


def circuit_rows(unet, circuit, mode):
    """One row per visualized step of `circuit`: its names and the relative paths of its paper
    image, corrected images and the kernel connecting it to the next (earlier) step."""
    kernels = {pair["later"]["conv_index"]: pair
               for pair in connecting_kernels(unet, main_path(circuit["steps"]), mode)}
    rows = []
    for step in visualized_steps(circuit["steps"], mode):
        corrected = conv_target(unet, step["conv_index"], step["filter"], "corrected")
        pair = kernels.get(step["conv_index"])
        rows.append({
            "conv_index": step["conv_index"], "layer_index": step["layer_index"],
            "name": step["name"], "filter": step["filter"],
            "paper": f"filters/{step_target(unet, step, mode).stem}.png",
            "corrected_address": corrected.address,
            "descent": f"{CORRECTED_DESCENT_DIR}/{corrected.stem}.png",
            "ascent": f"{CORRECTED_ASCENT_DIR}/{corrected.stem}.png",
            "kernel": None if pair is None else f"weights/{weights_name(pair)}",
            "kernel_from": None if pair is None else (
                f"layer {pair['earlier']['layer_index']} filter {pair['earlier']['filter']}"),
        })
    return rows


def page_context(unet, found, branch, settings, corrected, model):
    """Everything the index templates show, JSON-ready."""
    circuits = []
    for circuit in found["circuits"]:
        rank = circuit["rank"]
        circuits.append({
            "rank": rank, "seed": circuit["seed"], "stopped": circuit.get("stopped"),
            "strip": f"circuit_{rank}.png",
            "paper_figure": "Appendix A (the 2nd best circuit)" if rank == 1 else "Appendix A",
            "rows": circuit_rows(unet, circuit, found["mode"]),
        })
    return {
        "model": model, "paper": dataclasses.asdict(settings),
        "corrected": dataclasses.asdict(corrected), "circuits": circuits,
        "branch": {"figure": os.path.basename(branch["figure"]),
                   "marked_a": list(branch["marked_a"]), "marked_b": list(branch["marked_b"]),
                   "images": [os.path.relpath(p, os.path.dirname(os.path.dirname(p)))
                              for p in branch["images"]]},
    }


def render(template_name, context):
    """Renders `templates/{template_name}` with Jinja2 (autoescaped for .html)."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template(template_name).render(**context)


def index_text(context):
    """The Markdown index of a reproduce run (for GitHub)."""
    return render("paper_index.md.j2", context)


def index_html(context):
    """The HTML page of a reproduce run, figures inline by relative path."""
    return render("paper_index.html.j2", context)


class SettingsChanged(ValueError):
    """A resumed run asked for other settings than the run on disk."""


SETTINGS_FILE = "settings.json"


def run_record(settings, corrected, top_k, **model_settings):
    """The settings a run's outputs depend on, keyed by the script's flag names (JSON-ready).

    `model_settings`: the model flags (model, img_height, img_width, random_weights, ...)."""
    record = dict(model_settings)
    record.update({
        "top_k": top_k, "mode": settings.mode, "steps": settings.steps,
        "learning_rate": settings.learning_rate, "direction": settings.direction,
        "seed": settings.seed, "corrected_steps": corrected.steps,
        "corrected_learning_rate": corrected.learning_rate, "timestep": corrected.timestep,
    })
    return record


def check_resume(out_dir, record, overwrite=False):
    """Raises SettingsChanged if `out_dir` holds a run made with other settings than `record`
    (or outputs with no `settings.json`), unless `overwrite`. Naming the flags that differ."""
    if overwrite or not os.path.isdir(out_dir):
        return
    path = os.path.join(out_dir, SETTINGS_FILE)
    if not os.path.exists(path):
        found = [p for p in OUTPUT_FOLDERS + OUTPUT_PATTERNS
                 if glob.glob(os.path.join(out_dir, p))]
        if found:
            raise SettingsChanged(
                f"{out_dir} holds outputs ({', '.join(found)}) but no {SETTINGS_FILE}, so "
                f"they may come from other settings: rerun with --overwrite to replace them, "
                f"or choose another --out_dir")
        return
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError) as error:
        raise SettingsChanged(f"{path} is unreadable ({error}): rerun with --overwrite") from None
    differ = [key for key in dict.fromkeys(list(record) + list(old))
              if old.get(key) != record.get(key)]
    if differ:
        changes = ", ".join(f"--{key} was {old.get(key)!r}, now {record.get(key)!r}"
                            for key in differ)
        raise SettingsChanged(
            f"{out_dir} holds a run with other settings ({changes}); its figures would not "
            f"match: rerun with --overwrite to redo them, or choose another --out_dir")


OUTPUT_FOLDERS = ("filters", "weights", "branch_filters", CORRECTED_DESCENT_DIR,
                  CORRECTED_ASCENT_DIR)
OUTPUT_PATTERNS = ("circuit_*.png", "circuits.json", "branch_svd_conv_*", "index.md",
                   "index.html", SETTINGS_FILE)


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
                    overwrite=False, progress=True, corrected=None, record=None):
    """Runs the whole pipeline into `out_dir`; returns the path of `index.html`.

    Args:
        settings: DescentSettings of the paper column (the circuits' mode, usually paper).
        corrected: DescentSettings of the corrected columns (default `DescentSettings()`);
            its direction is ignored: both descent and ascent are drawn.
        record: the settings to record and check on resume (default `run_record(...)`).

    Raises:
        SettingsChanged if `out_dir` holds a run with other settings (unless `overwrite`).
    """
    corrected = corrected or DescentSettings()
    record = record or run_record(settings, corrected, top_k, model=model)
    check_resume(out_dir, record, overwrite)
    if overwrite:
        clear_outputs(out_dir)
    io.save_json(os.path.join(out_dir, SETTINGS_FILE), record)
    found = find_circuits(unet, top_k, settings.mode)
    write_circuit_figures(unet, decoder, found, settings, out_dir, batch_size, overwrite,
                          progress, dpi=30, loss_plots=False)
    write_corrected_figures(unet, decoder, found, corrected, out_dir, batch_size, overwrite,
                            progress)
    branch = write_branch_figures(unet, decoder, settings, out_dir, batch_size=batch_size,
                                  overwrite=overwrite, progress=progress)
    context = page_context(unet, found, branch, settings, corrected, model)
    io.save_text(os.path.join(out_dir, "index.md"), index_text(context))
    index_path = os.path.join(out_dir, "index.html")
    io.save_text(index_path, index_html(context))
    return index_path
