"""One cache per model: what the toolkit computes once per model and reuses.

    from keras_sd_interp.lens.cache import model_cache

    shapes = model_cache(unet).get_or_build("taps.shapes", lambda: trace_shapes(unet))
    model_cache(unet).clear()      # after changing the weights: forget what was read from them

`model_cache(model)` returns the model's `ModelCache`, a dict keyed by a namespaced string or
tuple ("taps.shapes", ("taps.tap_model", addresses), "circuits.conv_kernels", ...). It is made
on first use and lives exactly as long as the model: it is kept in one attribute of the model,
written straight into the instance `__dict__` so that Keras does not track what it holds
(tap models, compiled steps, NumPy arrays) as sub-layers or weights. A `WeakKeyDictionary` keyed
by the model would never let a model go, since the cached tap models and compiled steps hold the
model themselves; an attribute makes them one reference cycle that the garbage collector frees.

This module is the only place that stores anything on a model.
"""

_ATTRIBUTE = "_keras_sd_interp_cache"


class ModelCache(dict):
    """A dict of values computed from one model (see the module doc)."""

    def get_or_build(self, key, build):
        """`self[key]`, computed by `build()` (no arguments) and stored the first time."""
        if key not in self:
            self[key] = build()
        return self[key]


def model_cache(model):
    """The `ModelCache` of `model` (a Keras model, or any object with a `__dict__`)."""
    cache = model.__dict__.get(_ATTRIBUTE)
    if cache is None:
        cache = model.__dict__[_ATTRIBUTE] = ModelCache()
    return cache
