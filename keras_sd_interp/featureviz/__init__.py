"""Feature visualization of a diffusion U-Net, in lucent's rooms, with the paper's method beside.

The paper's filter visualization (latent descent; `paper/`):

    settings = DescentSettings.paper()                       # the course loop, bug for bug
    targets = [layer_target(unet, 12, 354), conv_target(unet, 7, 3, "corrected")]
    result = optimize_latents(unet, targets, settings)       # latents (n, h, w, 4), losses
    images = decode_to_uint8(decoder, result.latents, settings.mode)

The lucent-style loop:

    from keras_sd_interp.featureviz import objectives as obj
    from keras_sd_interp.featureviz.render import VizSettings, visualize
    objective = obj.sae_feature(site, sae, 7, batch=0) + 0.5 * obj.channel(site, 3, batch=1)
    result = visualize(unet, objective, VizSettings.preset("diffusion"), batch_size=2,
                       timesteps=[400, 400], context=empty_prompt_context)

One idea per module:
- `objectives`: the one objective algebra (channel, neuron, direction, sae_feature, diversity,
  per-item channels; + - *), used by both loops;
- `targets`: what the paper's figures look at (FilterTarget: address, filter, file stem);
- `param` (direct, fourier, pixel; start draws), `transforms`, `penalties`, `presets` (paper,
  lucent, diffusion; see docs/feature_visualization_and_sae.md);
- `render`: the lucent-style loop (`visualize`);
- `paper/`: the course's descent bug for bug (`paper.course`: its numbers, one copy) and the
  corrected variant, compiled per set of addresses (`paper.descent`);
- `decode`: latent -> uint8 image (the paper's wrapping cast or the corrected clip).
Files: `reports.featureviz`; the paper's whole pipeline: `experiments.paper`.
"""

from keras_sd_interp.featureviz.decode import decode_to_uint8
from keras_sd_interp.featureviz.paper import (DescentResult, DescentSettings, optimize_latents,
                                              visualize_batches)
from keras_sd_interp.featureviz.targets import FilterTarget, conv_target, layer_target, tap_target

__all__ = [
    "DescentResult", "DescentSettings", "FilterTarget", "conv_target", "decode_to_uint8",
    "layer_target", "optimize_latents", "tap_target", "visualize_batches",
]
