"""Filter visualization by latent descent (the paper's method) and its corrected variant.

    settings = DescentSettings.paper()                       # the course loop, bug for bug
    targets = [layer_target(unet, 12, 354), conv_target(unet, 7, 3, "corrected")]
    result = optimize_latents(unet, targets, settings)       # latents (n, h, w, 4), losses
    images = decode_to_uint8(decoder, result.latents, settings.mode)

One idea per module: `targets` (what to look at), `init` (where the latent starts),
`objectives` (one loss per filter), `optimize` (the compiled loop), `render` (latent -> image),
`batches` (many filters, a batch at a time). Files: `reports.featureviz.visualize_filters`.

Feature visualization that works on a diffusion U-Net (lucent's four rooms):

    from keras_sd_interp.featureviz import objectives as obj
    from keras_sd_interp.featureviz.loop import VizSettings, visualize
    objective = obj.sae_feature(site, sae, 7, batch=0) + 0.5 * obj.channel(site, 3, batch=1)
    result = visualize(unet, objective, VizSettings.preset("diffusion"), batch_size=2,
                       timesteps=[400, 400], context=empty_prompt_context)

`objectives` (Objective: channel, neuron, direction, sae_feature, diversity; + - *),
`param` (direct, fourier), `transforms` + `penalties`, `loop` (the render loop), `presets`
(paper, lucent, diffusion; see docs/feature_visualization_and_sae.md).
"""

from keras_sd_interp.featureviz.batches import visualize_batches
from keras_sd_interp.featureviz.optimize import DescentResult, DescentSettings, optimize_latents
from keras_sd_interp.featureviz.render import decode_to_uint8
from keras_sd_interp.featureviz.targets import FilterTarget, conv_target, layer_target, tap_target

__all__ = [
    "DescentResult", "DescentSettings", "FilterTarget", "conv_target", "decode_to_uint8",
    "layer_target", "optimize_latents", "tap_target", "visualize_batches",
]
