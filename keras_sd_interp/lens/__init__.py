"""The lens: the only code that reaches inside the models.

- `sites`: the named points every rebuilt layer reports through, `hooks(...)` around one call,
  and the edits (`replace_with`, `add`, `scale`);
- `taps`: addresses (layer index, conv index, readable name), tap models, run_with_cache/hooks;
- `text`: the text encoder's sites and their shapes;
- `sampler`: the toolkit's DDIM sampler with classifier-free guidance (`pipe.text_to_image`);
- `tracing`: `trace(pipe, record=..., edits=..., steps=..., half=..., reduce=...)` around a whole
  generation, and `patch(other_trace)` to put one run's tensors into another;
- `graph`: which layer feeds which (Keras' inbound nodes) and where a channel comes from;
- `cache`: `model_cache(model)`, the one per-model cache of everything computed once per model.

    from keras_sd_interp import lens
    with lens.trace(pipe, record="*.attn2.probs", reduce="sum") as tr:
        pipe.text_to_image("a sneaker and a bag", num_steps=25, seed=0)
    tr["spatial_transformer_3.attn2.probs"]
"""

import importlib

# The models import lens.sites (every rebuilt layer reports through it), and the sampler
# imports the models: so the names below load on first use, not with the package.
_EXPORTS = {
    "Generation": "sampler", "Sampler": "sampler",
    "Trace": "tracing", "Where": "tracing", "known_sites": "tracing", "patch": "tracing",
    "trace": "tracing",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_sd_interp.lens' has no attribute {name!r}")
    return getattr(importlib.import_module(f"keras_sd_interp.lens.{_EXPORTS[name]}"), name)
