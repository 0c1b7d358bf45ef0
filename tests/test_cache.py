"""The one per-model cache: one object per model, built once per key, freed with the model."""

import gc
import weakref

import keras

from keras_sd_interp.lens.cache import ModelCache, model_cache


def small_model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, keras.layers.Dense(2)(inputs))


def test_one_cache_per_model_and_one_build_per_key():
    first, second = small_model(), small_model()
    assert isinstance(model_cache(first), ModelCache)
    assert model_cache(first) is model_cache(first)
    assert model_cache(first) is not model_cache(second)
    calls = []
    build = lambda: calls.append(1) or len(calls)  # noqa: E731
    assert model_cache(first).get_or_build("k", build) == 1
    assert model_cache(first).get_or_build("k", build) == 1 and calls == [1]
    assert model_cache(second).get_or_build("k", build) == 2
    model_cache(first).clear()
    assert model_cache(first).get_or_build("k", build) == 3


def test_cache_is_not_tracked_by_keras_and_is_freed_with_the_model():
    model = small_model()
    weights = len(model.weights)
    model_cache(model)["a model inside"] = small_model()   # would be a sub-layer if tracked
    model_cache(model)["self"] = lambda: model            # a value that holds the model
    assert len(model.weights) == weights
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None
