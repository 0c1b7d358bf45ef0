"""Using the trained judge: load the shipped weights, predict classes, read penultimate features."""

import os

import keras
import numpy as np

from keras_sd_interp.models.keras_weights import load_weights_checked
from keras_sd_interp.judge.frechet import frechet_distance_from_features
from keras_sd_interp.judge.model import FEATURES_LAYER, build_judge

ASSET_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "judge")
DEFAULT_WEIGHTS = os.path.join(ASSET_DIR, "judge.weights.h5")


def load_judge(weights_path=None):
    """Builds the judge and loads its weights (default: the file shipped in the package).

    Returns a keras.Model mapping images (B, 28, 28, 1) in [-1, 1] to logits (B, 10).
    """
    return load_weights_checked(build_judge(), weights_path or DEFAULT_WEIGHTS, what="judge")


def as_judge_input(images):
    """uint8 (N, 28, 28) in [0, 255] or float (N, 28, 28[, 1]) in [-1, 1] -> float32 (N, 28, 28, 1)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 127.5 - 1.0
    images = images.astype(np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1:] != (28, 28, 1):
        raise ValueError(f"the judge takes (N, 28, 28) or (N, 28, 28, 1) images, got {images.shape}")
    return np.clip(images, -1.0, 1.0)


def predict_classes(judge, images, batch_size=500):
    """Class index (N,) int64 and softmax probabilities (N, 10) for images (see `as_judge_input`)."""
    logits = judge.predict(as_judge_input(images), batch_size=batch_size, verbose=0)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    return probabilities.argmax(-1).astype(np.int64), probabilities


def features_model(judge):
    """A model from the judge's input to its penultimate `features` layer, (B, 28, 28, 1) -> (B, 128)."""
    return keras.Model(judge.input, judge.get_layer(FEATURES_LAYER).output)


def penultimate_features(judge, images, batch_size=500):
    """The judge's penultimate features (N, 128) float32 for images (see `as_judge_input`)."""
    return features_model(judge).predict(as_judge_input(images), batch_size=batch_size, verbose=0)


def frechet_judge_distance(judge, images_a, images_b, batch_size=500):
    """Frechet distance between two image sets in the judge's feature space (not an FID)."""
    return frechet_distance_from_features(
        penultimate_features(judge, images_a, batch_size),
        penultimate_features(judge, images_b, batch_size),
    )
