"""The Fashion-MNIST judge as a scorer, and where a subject sits in the tiny model's prompts.

    JudgeScorer(load_judge())(images, "a sneaker and a bag")   # (n,) mean of both items' probs

    spec = subject_spec(pipe, "a sneaker and a bag", "sneaker")   # tokens [2], class 7, "left"
    judge_scorer(load_judge())(images, spec)   # (n,) probability of a sneaker in the left cell
"""

import numpy as np

from keras_sd_interp.data import compositions
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.judge import predict_classes
from keras_sd_interp.scoring.texts import as_texts


def subject_spec(pipe, prompt, subject):
    """Where the subject is: {"tokens": its token positions, "class": class index,
    "cell": "left" | "right" | "middle"} for tiny's prompts "a X" and "a X and a Y".

    Raises ValueError for a word that is not a class name or not in the prompt."""
    if subject not in CLASS_NAMES:
        raise ValueError(f"unknown subject {subject!r}; valid: {list(CLASS_NAMES)}")
    words = prompt.split()
    if subject not in words:
        raise ValueError(f"subject {subject!r} is not a word of prompt {prompt!r}")
    position = words.index(subject)
    try:   # the item the subject names, in the order the caption names them
        cell = caption_items(prompt)[words[:position].count("and")][1]
    except (ValueError, IndexError):
        cell = "middle" if "and" not in words else ("left" if position < words.index("and")
                                                    else "right")
    return {"tokens": [position + 1], "class": CLASS_NAMES.index(subject), "cell": cell}


def judge_scorer(judge):
    """A scorer (images uint8 (n, 32, 64, 1), spec) -> probabilities (n,) of spec's class in
    spec's cell, by the Fashion-MNIST judge. SD users pass their own (e.g. CLIP)."""
    def score(images, spec):
        if spec["cell"] == "middle":
            cells = compositions.middle(images)
        else:
            cells = compositions.halves(images)[spec["cell"] == "right"]
        return predict_classes(judge, cells)[1][:, spec["class"]]

    return score


CAPTION_FORMS = ("a X", "a X and a Y", "a X on the left and a Y on the right",
                 "a Y on the right and a X on the left", "on the left a X and on the right a Y",
                 "on the right a Y and on the left a X")


def caption_items(text):
    """A tiny caption -> [(class index, cell)], cell "left" | "right" | "middle".

    Raises ValueError naming the caption forms and class words the judge can read."""
    parts = text.lower().split(" and ")
    items = []
    for part in parts:
        words = part.split()
        if len(words) == 5 and words[:2] == ["on", "the"] and words[3] == "a":
            words = ["a", words[4], "on", "the", words[2]]   # "on the left a X": place first
        where = words[2:] if len(words) > 2 else None
        if len(words) < 2 or words[0] != "a" or words[1] not in CLASS_NAMES or \
                where not in (None, ["on", "the", "left"], ["on", "the", "right"]):
            raise ValueError(f"the judge cannot read {text!r}: write one of {list(CAPTION_FORMS)} "
                             f"with X, Y in {list(CLASS_NAMES)}")
        items.append((CLASS_NAMES.index(words[1]), where[-1] if where else None))
    if len(items) > 2:
        raise ValueError(f"the judge cannot read {text!r}: it names more than two items")
    if len(items) == 1:
        return [(items[0][0], items[0][1] or "middle")]
    cells = [cell for _, cell in items]
    if cells == [None, None]:
        return [(items[0][0], "left"), (items[1][0], "right")]
    if None in cells or cells[0] == cells[1]:
        raise ValueError(f"the judge cannot read {text!r}: name both sides (left and right) "
                         "or neither")
    return items


class JudgeScorer:
    """The Fashion-MNIST judge as a `score(images, texts) -> (n,)` scorer for the tiny model.

    Each text is a tiny caption (`CAPTION_FORMS`); its score is the judge's probability of each
    named class in its cell, averaged over the caption's items (1 = every item as prompted).
    images: uint8 (n, 32, 64, 1); texts: a list of n captions or one caption for all.
    """

    def __init__(self, judge):
        self.judge = judge

    def __call__(self, images, texts):
        images = np.asarray(images)
        texts = as_texts(texts, len(images))
        left, right = compositions.halves(images)
        cells = {"left": left, "right": right, "middle": compositions.middle(images)}
        parsed = {text: caption_items(text) for text in set(texts)}
        crops, owners, classes, weights = [], [], [], []
        for i, text in enumerate(texts):
            for class_index, cell in parsed[text]:
                crops.append(cells[cell][i])
                owners.append(i)
                classes.append(class_index)
                weights.append(1.0 / len(parsed[text]))
        scores = np.zeros(len(images), np.float32)
        if crops:  # one judge call for every cell of every image
            probs = predict_classes(self.judge, np.stack(crops))[1]
            np.add.at(scores, owners, probs[np.arange(len(crops)), classes] * weights)
        return scores
