"""The Fashion-MNIST judge: a small CNN classifier that scores every generated image offline."""

from keras_sd_interp.judge.frechet import frechet_distance_from_features
from keras_sd_interp.judge.judge import (
    frechet_judge_distance,
    load_judge,
    penultimate_features,
    predict_classes,
)
from keras_sd_interp.judge.model import build_judge

__all__ = [
    "build_judge",
    "frechet_distance_from_features",
    "frechet_judge_distance",
    "load_judge",
    "penultimate_features",
    "predict_classes",
]
