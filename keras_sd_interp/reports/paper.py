"""The files of the paper's pipeline (`experiments.paper` computes it): one folder with a page to
open (`index.html`, made with Jinja2) and `index.md` for GitHub.

Every circuit step is shown three ways: the paper mode's image (the course loop, bug for bug),
and the corrected method's images, descent and ascent, with the connecting kernel beside them.

Resume: the run's settings are recorded in `settings.json`; a run into a folder that holds
another run's settings refuses (`SettingsChanged` names the flag and both values). Filter images
already on disk that decode (`io.image_is_valid`) count as written, so an interrupted run
resumes and a zero-byte or corrupt PNG is recomputed; with `overwrite` the previous run's
outputs are removed first, so figures of circuits that a new model no longer has do not linger.
"""

import dataclasses
import glob
import json
import os
import shutil

from keras_sd_interp import io
from keras_sd_interp.reports.circuits import (save_branch_svd, weights_name, write_circuit_strips,
                                              write_circuits_json, write_weight_plots)
from keras_sd_interp.reports.featureviz import FilterFiles

CORRECTED_DESCENT_DIR = "corrected_descent"
CORRECTED_ASCENT_DIR = "corrected_ascent"
TEMPLATES = os.path.join(os.path.dirname(__file__), "templates")


def circuit_rows(steps):
    """One row per visualized step (`experiments.paper.CircuitStep`s of one circuit): its names
    and the relative paths of its paper image, corrected images and the kernel connecting it to
    the next (earlier) step."""
    rows = []
    for s in steps:
        pair = s.kernel
        rows.append({
            "conv_index": s.step["conv_index"], "layer_index": s.step["layer_index"],
            "name": s.step["name"], "filter": s.step["filter"],
            "paper": f"filters/{s.paper.stem}.png",
            "corrected_address": s.corrected.address,
            "descent": f"{CORRECTED_DESCENT_DIR}/{s.corrected.stem}.png",
            "ascent": f"{CORRECTED_ASCENT_DIR}/{s.corrected.stem}.png",
            "kernel": None if pair is None else f"weights/{weights_name(pair)}",
            "kernel_from": None if pair is None else (
                f"layer {pair['earlier']['layer_index']} filter {pair['earlier']['filter']}"),
        })
    return rows


def page_context(found, steps, branch, settings, corrected, model):
    """Everything the index templates show, JSON-ready. `steps`: per circuit its CircuitSteps;
    `branch`: {"figure", "marked_a", "marked_b", "images"} (paths)."""
    circuits = []
    for circuit, circuit_steps in zip(found["circuits"], steps):
        rank = circuit["rank"]
        circuits.append({
            "rank": rank, "seed": circuit["seed"], "stopped": circuit.get("stopped"),
            "strip": f"circuit_{rank}.png",
            "paper_figure": "Appendix A (the 2nd best circuit)" if rank == 1 else "Appendix A",
            "rows": circuit_rows(circuit_steps),
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


class PaperFiles:
    """The folder of one reproduce run and its writers (`experiments.paper.reproduce_paper`
    hands them its results). `filters`, `corrected[direction]` and `branch_filters` are the
    FilterFiles of the three image folders (they say which images are already written).

    Args:
        out_dir: the folder.
        overwrite: remove a previous run's outputs first and redo every figure.
        record: the settings to record and check on resume (default `run_record(...)`).
    """

    def __init__(self, out_dir, overwrite=False, record=None):
        self.out_dir, self.overwrite, self.record = out_dir, overwrite, record
        self.filters = self.image_folder("filters")
        self.corrected = {"descent": self.image_folder(CORRECTED_DESCENT_DIR),
                          "ascent": self.image_folder(CORRECTED_ASCENT_DIR)}
        self.branch_filters = self.image_folder("branch_filters")

    def image_folder(self, name):
        """The FilterFiles of `out_dir/name` (no loss plots on the page)."""
        return FilterFiles(os.path.join(self.out_dir, name), self.overwrite, loss_plots=False)

    def begin(self, settings, corrected, top_k, model):
        """Checks a resumed run's settings (SettingsChanged), clears with `overwrite`, and
        records the settings in `settings.json`."""
        record = self.record or run_record(settings, corrected, top_k, model=model)
        check_resume(self.out_dir, record, self.overwrite)
        if self.overwrite:
            clear_outputs(self.out_dir)
        io.save_json(os.path.join(self.out_dir, SETTINGS_FILE), record)

    def write_circuits(self, found):
        """`circuits.json`."""
        return write_circuits_json(found, self.out_dir)

    def write_kernels(self, pairs, dpi=30):
        """One `weights/..._weights.png` per connecting-kernel pair (kept if it decodes)."""
        return write_weight_plots(pairs, os.path.join(self.out_dir, "weights"), self.overwrite,
                                  dpi)

    def write_strips(self, ranks_and_stems):
        """`circuit_{rank}.png`: each circuit's filter images in walk order (always redrawn);
        `ranks_and_stems` as `experiments.circuits.circuit_stems` gives them."""
        return write_circuit_strips(ranks_and_stems, self.filters.out_dir, self.out_dir)

    def branch_stem(self, branch):
        return os.path.join(self.out_dir, f"branch_svd_conv_{branch.conv_a}_conv_{branch.conv_b}")

    def write_branch(self, branch, mode):
        """The branch-SVD scatter plot and its projections (`experiments.paper.Branch`);
        returns the plot's path."""
        return save_branch_svd(branch.result, self.branch_stem(branch), branch.conv_a,
                               branch.conv_b, branch.marked_a, branch.marked_b,
                               title=f"{mode} mode, channels {branch.result.channels}",
                               overwrite=self.overwrite)

    def write_page(self, found, steps, branch, settings, corrected, model):
        """`index.md` and `index.html` (`steps`: per circuit its CircuitSteps; `branch`: an
        `experiments.paper.Branch`); returns the path of `index.html`."""
        paths = {"figure": self.branch_stem(branch) + ".png", "marked_a": branch.marked_a,
                 "marked_b": branch.marked_b,
                 "images": [self.branch_filters.path(t) for t in branch.targets]}
        context = page_context(found, steps, paths, settings, corrected, model)
        io.save_text(os.path.join(self.out_dir, "index.md"), index_text(context))
        index_path = os.path.join(self.out_dir, "index.html")
        io.save_text(index_path, index_html(context))
        return index_path
