"""The paper's pipeline end to end: circuits -> filter images -> connecting kernels -> branch SVD.

    files = reports.paper.PaperFiles(out_dir)      # writes; says which filter images exist
    index = reproduce_paper(unet, decoder, DescentSettings.paper(), files, top_k=5)

Every visualized circuit step is shown three ways: paper mode (the course loop, bug for bug), and
the corrected method, descent and ascent, with the connecting kernel beside them. Everything is
computed here and handed to `files`, which writes it; `files.begin` checks that a resumed run
has the same settings, and a filter image that is already written is not recomputed.
"""

import dataclasses

from keras_sd_interp.circuits.branch_svd import branch_filters, branch_svd
from keras_sd_interp.circuits.kernels import connecting_kernels
from keras_sd_interp.circuits.walk import find_circuits, main_path, visualized_steps
from keras_sd_interp.experiments.circuits import circuit_stems
from keras_sd_interp.experiments.filters import visualize_into
from keras_sd_interp.featureviz import DescentSettings, conv_target


@dataclasses.dataclass
class CircuitStep:
    """One visualized step of a circuit: `step` (from `find_circuits`), its paper-column target,
    its corrected target (the conv itself) and the kernel pair connecting it to the next
    (earlier) step (None at the end of the walk)."""

    step: dict
    paper: object
    corrected: object
    kernel: dict = None


@dataclasses.dataclass
class Branch:
    """The branch SVD between convs `conv_a` and `conv_b`, its marked filters and the targets
    that visualize them (on conv a, whose output conv b's side points read)."""

    result: object
    conv_a: int
    conv_b: int
    marked_a: tuple
    marked_b: tuple
    targets: list


def circuit_steps(unet, circuit, mode, kernels):
    """The CircuitSteps of `circuit`'s visualized steps; `kernels` its `connecting_kernels`."""
    by_later = {pair["later"]["conv_index"]: pair for pair in kernels}
    return [
        CircuitStep(step, conv_target(unet, step["conv_index"], step["filter"], mode),
                    conv_target(unet, step["conv_index"], step["filter"], "corrected"),
                    by_later.get(step["conv_index"]))
        for step in visualized_steps(circuit["steps"], mode)
    ]


def branch(unet, mode, conv_a=9, conv_b=38, concat=True):
    """The paper's branch-specialization figure (`visualize_branch_svd_combined_tf(9, 38)`)."""
    result = branch_svd(unet, conv_a, conv_b, mode, concat)
    marked_a, marked_b = branch_filters(result)
    targets = [conv_target(unet, conv_a, f, mode) for f in marked_a + marked_b]
    return Branch(result, conv_a, conv_b, marked_a, marked_b, targets)


def unique(targets):
    return list(dict.fromkeys(targets))


def reproduce_paper(unet, decoder, settings, files, model="tiny", top_k=5, batch_size=16,
                    progress=True, corrected=None):
    """Runs the whole pipeline, handing every result to `files`; returns `files.write_page`'s
    value (the path of `index.html` for `reports.paper.PaperFiles`).

    Args:
        settings: DescentSettings of the paper column (the circuits' mode, usually paper).
        files: the writer (`reports.paper.PaperFiles`): begin, write_circuits, filters,
            write_kernels, write_strips, corrected, write_branch, branch_filters, write_page.
        corrected: DescentSettings of the corrected columns (default `DescentSettings()`);
            its direction is ignored: both descent and ascent are drawn.

    Raises:
        reports.paper.SettingsChanged (from `files.begin`) if the folder holds a run with other
        settings.
    """
    corrected = corrected or DescentSettings()
    files.begin(settings, corrected, top_k, model)
    found = find_circuits(unet, top_k, settings.mode)
    files.write_circuits(found)
    kernels = [connecting_kernels(unet, main_path(c["steps"]), found["mode"])
               for c in found["circuits"]]
    steps = [circuit_steps(unet, c, found["mode"], k) for c, k in zip(found["circuits"], kernels)]
    paper_targets = unique([s.paper for circuit in steps for s in circuit])
    visualize_into(unet, decoder, paper_targets, settings, files.filters, batch_size, progress)
    files.write_kernels([pair for pairs in kernels for pair in pairs])
    files.write_strips(circuit_stems(unet, found))
    corrected_targets = unique([s.corrected for circuit in steps for s in circuit])
    for direction in ("descent", "ascent"):
        visualize_into(unet, decoder, corrected_targets,
                       dataclasses.replace(corrected, direction=direction),
                       files.corrected[direction], batch_size, progress)
    branched = branch(unet, settings.mode)
    files.write_branch(branched, settings.mode)
    visualize_into(unet, decoder, branched.targets, settings, files.branch_filters, batch_size,
                   progress)
    return files.write_page(found, steps, branched, settings, corrected, model)
