"""The Fashion-MNIST judge as a scorer, and where a subject sits in the tiny model's prompts.

    spec = subject_spec(pipe, "a sneaker and a bag", "sneaker")   # tokens [2], class 7, "left"
    judge_scorer(load_judge())(images, spec)   # (n,) probability of a sneaker in the left cell
"""

from keras_sd_interp.data import compositions
from keras_sd_interp.data.fashion_mnist import CLASS_NAMES
from keras_sd_interp.judge import predict_classes


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
