"""The circuit tools' runs: filter images of every visualized step of the circuits, their
connecting kernels and strips, handed to a writer (`reports.circuits.CircuitFiles`).

    found = circuits.find_circuits(unet, top_k=5, mode="paper")
    circuit_figures(unet, decoder, found, settings, CircuitFiles(out_dir))
"""

from keras_sd_interp.circuits.kernels import connecting_kernels
from keras_sd_interp.circuits.walk import main_path, visualized_steps
from keras_sd_interp.experiments.filters import visualize_into
from keras_sd_interp.featureviz import conv_target


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


def circuit_kernels(unet, found, hidden="circuit"):
    """The connecting kernels along every circuit's main path, circuits in order: a list of the
    pair dicts `circuits.connecting_kernels` gives."""
    return [pair for circuit in found["circuits"]
            for pair in connecting_kernels(unet, main_path(circuit["steps"]), found["mode"],
                                           hidden)]


def circuit_stems(unet, found):
    """Per circuit, (rank, the filter-image stems of its visualized steps in walk order)."""
    mode = found["mode"]
    return [(circuit["rank"], [step_target(unet, step, mode).stem
                               for step in visualized_steps(circuit["steps"], mode)])
            for circuit in found["circuits"]]


def circuit_figures(unet, decoder, found, settings, files, batch_size=16, progress=True):
    """Visualizes every step of the circuits in `found` that `files.filters` lacks, then has
    `files` write circuits.json, the weight plots and the strips. Returns {"weights": paths,
    "strips": paths}."""
    files.write_json(found)
    visualize_into(unet, decoder, circuit_targets(unet, found), settings, files.filters,
                   batch_size, progress)
    return {"weights": files.write_weights(circuit_kernels(unet, found)),
            "strips": files.write_strips(circuit_stems(unet, found))}
