"""The lens: the only code that reaches inside the models.

- `sites`: the named points every rebuilt layer reports through, `hooks(...)` around one call,
  and the edits (`replace_with`, `add`, `scale`);
- `taps`: addresses (layer index, conv index, readable name), tap models, run_with_cache/hooks;
- `sampler`: the toolkit's DDIM sampler with classifier-free guidance (`pipe.text_to_image`);
- `trace`: `trace(pipe, record=..., edits=..., steps=..., half=..., reduce=...)` around a whole
  generation, and `patch(other_trace)` to put one run's tensors into another.

    from keras_sd_interp import lens
    with lens.trace(pipe, record="*.attn2.probs", reduce="sum") as tr:
        pipe.text_to_image("a sneaker and a bag", num_steps=25, seed=0)
    tr["spatial_transformer_3.attn2.probs"]
"""

from keras_sd_interp.lens.sampler import Generation, Sampler
from keras_sd_interp.lens.trace import Trace, Where, known_sites, patch, trace

__all__ = ["Generation", "Sampler", "Trace", "Where", "known_sites", "patch", "trace"]
