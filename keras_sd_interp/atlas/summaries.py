"""Per-unit summaries over the activity job's shards (`sweeps.jobs.activity`)."""

import numpy as np


class TopExamples:
    """The `num` images where each unit peaks highest, kept while shards stream by.

    `add(arrays, prefix)` takes one shard's arrays and a unit group's prefix ("9" for conv 9,
    "sae"); `result()` gives, per unit (axis 1): value, prompt_index, step, pos (num, c) and
    maps (num, c, h, w) float16, strongest first.
    """

    def __init__(self, num=4):
        self.num, self.kept = num, None

    def add(self, arrays, prefix):
        n = len(arrays["prompt_index"])
        incoming = {
            "value": arrays[f"{prefix}.peak"],
            "prompt_index": np.repeat(arrays["prompt_index"][:, None],
                                      arrays[f"{prefix}.peak"].shape[1], axis=1),
            "step": arrays[f"{prefix}.peak_step"].astype(np.int32),
            "pos": arrays[f"{prefix}.peak_pos"].astype(np.int32),
            "maps": arrays[f"{prefix}.maps"],
        }
        assert incoming["value"].shape[0] == n
        if self.kept is not None:
            incoming = {k: np.concatenate([self.kept[k], v]) for k, v in incoming.items()}
        order = np.argsort(-incoming["value"], axis=0, kind="stable")[: self.num]   # (num, c)
        self.kept = {k: np.take_along_axis(v, order.reshape(order.shape + (1,) * (v.ndim - 2)),
                                           axis=0) for k, v in incoming.items()}

    def result(self):
        return self.kept


def timestep_activity(mean_per_shard):
    """Mean over prompts of the per-step means: list of (S, n_i, c) -> (S, c)."""
    stacked = np.concatenate(mean_per_shard, axis=1)
    return stacked.mean(axis=1)


def word_scores(peaks, left, right, words):
    """How much each class word drives each unit: the mean peak over prompts naming the word,
    minus the mean over all prompts, in units of the unit's standard deviation.

    Args:
        peaks: (N, c) each prompt's peak per unit; left, right: (N,) class indices (-1: none);
        words: the class names (index -> word).
    Returns:
        (len(words), c) float32; a word no prompt names gets NaN.
    """
    mean, spread = peaks.mean(axis=0), peaks.std(axis=0) + 1e-8
    scores = np.full((len(words), peaks.shape[1]), np.nan, np.float32)
    for index in range(len(words)):
        named = (left == index) | (right == index)
        if named.any():
            scores[index] = (peaks[named].mean(axis=0) - mean) / spread
    return scores
