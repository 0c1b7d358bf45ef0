"""The lens: the only code that reaches inside the models.

- `sites`: `hooks(...)` around one call, and the edits (`replace_with`, `add`, `scale`); the
  point every rebuilt layer reports through is `keras_sd_interp.hook_points.site`;
- `selection`: one way to choose sites (names, globs, predicates, addresses), for hooks and
  traces alike;
- `catalog`: `list_sites(pipe or unet or text encoder)`, every site with its shape;
- `taps`: addresses (layer index, conv index, readable name), tap models, run_with_cache/hooks;
- `names`: site names from parts (`transformer_site(3, "attn2.probs")`), U-Net inputs;
- `weights`: the Dense kernels an edit may read and write (`dense_kernel`, `set_dense_kernel`);
- `tracing`: `trace(pipe, record=..., edits=..., steps=..., half=..., reduce=...)` around a whole
  generation (run by `models.sampler.Sampler`), and `patch(other_trace)`;
- `graph`: which layer feeds which (Keras' inbound nodes) and where a channel comes from;
- `tokens`: concepts as text: `concept_span(pipe, prompt, phrase)`, where a word or phrase sits
  on the token axis (sub-tokens, occurrences, the last subject token), for every tool;
- `cache`: `model_cache(model)`, the one per-model cache of everything computed once per model.

    from keras_sd_interp import lens
    with lens.trace(pipe, record="*.attn2.probs", reduce="sum") as tr:
        pipe.text_to_image("a sneaker and a bag", num_steps=25, seed=0)
    tr["spatial_transformer_3.attn2.probs"]
"""

from keras_sd_interp.lens import cache, catalog, graph, names, selection, sites, taps, tracing
from keras_sd_interp.lens import tokens, weights
from keras_sd_interp.lens.catalog import list_sites
from keras_sd_interp.lens.tokens import TokenSpan, concept_span
from keras_sd_interp.lens.names import transformer_site, unet_conditioning, unet_inputs
from keras_sd_interp.lens.tracing import Trace, Where, patch, trace
from keras_sd_interp.lens.weights import dense_kernel, set_dense_kernel

__all__ = [
    "TokenSpan", "Trace", "Where", "cache", "catalog", "concept_span", "dense_kernel", "graph", "list_sites", "names",
    "patch", "selection", "set_dense_kernel", "sites", "taps", "tokens", "trace", "tracing",
    "transformer_site", "unet_conditioning", "unet_inputs", "weights",
]
