"""Circuits: from a seed of the output conv, walk back along the strongest kernels.

`paper` mode is the course's `get_circuit`: conv index minus one at every step, the strongest
input channel of the current filter as the next filter, falling back to the next strongest while
it is `> conv[j-1].shape[3]` (an off-by-one; `>=` was meant), stopping before conv 0. So skip
channels are never followed and residual adds and attention are ignored.

The corrected walk follows the real graph (`lens.graph`): a skip channel leads to the skip's
source, a channel passing a SpatialTransformer or residual add keeps its index, every residual
route is walked as a branch (each (conv, filter) once), and the walk reaches conv 0.

A circuit is a list of steps (dicts, JSON-ready), the main path first (branch 0). Each step's
`strength` is ||W_parent[:, :, input_channel, parent_filter]|| of the link to the step it feeds.
"""

import numpy as np

from keras_sd_interp.circuits.strength import channel_strengths, conv_kernels, output_seeds
from keras_sd_interp.lens import taps
from keras_sd_interp.lens.graph import conv_input_sources, inventory

LAST_CONV = taps.NUM_CONVS - 1


def _step(unet, conv_index, filter_index, parent=None, input_channel=None, strength=None,
          route=(), branch=0):
    entry = inventory(unet)[conv_index]
    return {
        "conv_index": conv_index, "layer_index": entry.layer_index, "name": entry.name,
        "role": entry.role, "filter": int(filter_index), "strength": strength,
        "parent": parent, "input_channel": input_channel, "route": "+".join(route),
        "branch": branch,
    }


def paper_circuit(unet, seed):
    """The course's get_circuit(51, seed.channel, seed.filter): 51 steps, conv 51 down to 1.

    Returns:
        (steps, stop): `stop` is None, or why the walk ended early: where the `>` fallback lets
        channel == conv[j-1]'s filter count through, the course code dies with an IndexError;
        here the circuit ends there and says so.
    """
    kernels = conv_kernels(unet)
    steps = [_step(unet, LAST_CONV, seed.filter)]
    channel = seed.channel
    for j in range(LAST_CONV - 1, 0, -1):
        parent = steps[-1]
        link = channel_strengths(kernels[j + 1], parent["filter"])[channel]
        if channel >= kernels[j].shape[-1]:
            return steps, (
                f"channel {channel} of conv {j + 1} has no filter {channel} in conv {j} "
                f"(filters 0..{kernels[j].shape[-1] - 1}): the course's `>` let it through and "
                f"its code fails here with an IndexError"
            )
        steps.append(_step(unet, j, channel, len(steps) - 1, channel, float(link)))
        order = np.argsort(channel_strengths(kernels[j], channel))
        rank = -1
        while order[rank] > kernels[j - 1].shape[-1]:
            rank -= 1
        channel = int(order[rank])
    return steps, None


def _walk_path(unet, steps, seen, parent_id, channel, branch, queue):
    """Follows main sources from `steps[parent_id]`'s input `channel` until conv 0 or a node
    already in the circuit; other sources (residual routes) go to `queue`."""
    kernels = conv_kernels(unet)
    while True:
        parent = steps[parent_id]
        link = float(channel_strengths(kernels[parent["conv_index"]], parent["filter"])[channel])
        source, *others = conv_input_sources(unet, parent["conv_index"], channel)
        queue.extend((parent_id, channel, other) for other in others)
        if (source.conv_index, source.filter) in seen:
            return
        seen.add((source.conv_index, source.filter))
        steps.append(_step(unet, source.conv_index, source.filter, parent_id, channel, link,
                           source.route, branch))
        if source.conv_index == 0:
            return
        parent_id = len(steps) - 1
        channel = int(np.argmax(channel_strengths(kernels[source.conv_index], source.filter)))


def corrected_circuit(unet, seed, follow_residual=True):
    """The walk along the real graph: the main path to conv 0 first, then residual branches."""
    steps = [_step(unet, LAST_CONV, seed.filter)]
    seen = {(LAST_CONV, seed.filter)}
    queue = []
    _walk_path(unet, steps, seen, 0, seed.channel, 0, queue)
    branch = 0
    while follow_residual and queue:
        parent_id, channel, source = queue.pop(0)
        if (source.conv_index, source.filter) in seen:
            continue
        branch += 1
        seen.add((source.conv_index, source.filter))
        link = float(channel_strengths(conv_kernels(unet)[steps[parent_id]["conv_index"]],
                                       steps[parent_id]["filter"])[channel])
        steps.append(_step(unet, source.conv_index, source.filter, parent_id, channel, link,
                           source.route, branch))
        if source.conv_index > 0:
            strongest = int(np.argmax(channel_strengths(conv_kernels(unet)[source.conv_index],
                                                        source.filter)))
            _walk_path(unet, steps, seen, len(steps) - 1, strongest, branch, queue)
    return steps


def find_circuits(unet, top_k=5, mode="corrected", per_filter=15, follow_residual=True):
    """The top-k circuits: a JSON-ready dict with the seeds and one step list per circuit."""
    if mode not in ("paper", "corrected"):
        raise ValueError(f"mode {mode!r} is not one of ('paper', 'corrected')")
    seeds = output_seeds(unet, per_filter)
    if not 1 <= top_k <= len(seeds):
        raise ValueError(f"top_k={top_k} out of range: 1..{len(seeds)} seeds")
    circuits = []
    for rank, seed in enumerate(seeds[:top_k]):
        stop = None
        if mode == "paper":
            steps, stop = paper_circuit(unet, seed)
        else:
            steps = corrected_circuit(unet, seed, follow_residual)
        circuits.append({"rank": rank, "seed": vars(seed), "stopped": stop, "steps": steps})
    return {"mode": mode, "seeds": [vars(seed) for seed in seeds], "circuits": circuits}


def main_path(steps):
    """The steps of branch 0, in walk order (later convs first)."""
    return [step for step in steps if step["branch"] == 0]


def visualized_steps(steps, mode):
    """The steps that get a filter image.

    `paper`: per Keras layer the first step met (a ResBlock's conv2), as the course named its
    figures. Corrected: every main-path step, a ResBlock's conv1 included.
    """
    path = main_path(steps)
    if mode != "paper":
        return path
    seen_layers, kept = set(), []
    for step in path:
        if step["layer_index"] not in seen_layers:
            seen_layers.add(step["layer_index"])
            kept.append(step)
    return kept
