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


class SelectivityTop:
    """Class selectivity of every unit, streamed: the prompted classes of its `num` strongest
    (image, position) peaks, as `sae.features.class_selectivity` computes in one pass.

    `add(token_peak, classes)`: token_peak (n, h, w, c) each position's peak over steps,
    classes (n, h, w) the class prompted at each position (`sae.features.position_classes`);
    `result()`: class_ (c,) the modal class, share (c,) its share of the top, peak (c,) the
    strongest value, counts (num_classes, c).
    """

    def __init__(self, num=16, num_classes=10):
        self.num, self.num_classes = num, num_classes
        self.values = self.classes = None

    def add(self, token_peak, classes):
        c = token_peak.shape[-1]
        values = np.asarray(token_peak, np.float32).reshape(-1, c)
        labels = np.broadcast_to(np.asarray(classes).reshape(-1, 1), values.shape)
        if self.values is not None:
            values = np.concatenate([self.values, values])
            labels = np.concatenate([self.classes, labels])
        order = np.argsort(-values, axis=0, kind="stable")[: self.num]
        self.values = np.take_along_axis(values, order, axis=0)
        self.classes = np.take_along_axis(labels, order, axis=0)

    def result(self):
        counts = np.stack([(self.classes == k).sum(axis=0) for k in range(self.num_classes)])
        return {"class_": counts.argmax(axis=0), "share": counts.max(axis=0) / len(self.values),
                "peak": self.values.max(axis=0), "counts": counts}
