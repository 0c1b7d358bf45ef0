"""The paper's filter visualization: the course's latent descent bug for bug, and its corrected
variant, for many filters at once.

    settings = DescentSettings.paper()                       # course.STEPS steps, eta 5, t = i
    result = optimize_latents(unet, [layer_target(unet, 12, 354)], settings)
    images = decode_to_uint8(decoder, result.latents, settings.mode)

`course` holds the course's numbers and its start latent (the one copy); `descent` the compiled,
batched loop (`DescentSettings`, `optimize_latents`, `visualize_batches`).
"""

from keras_sd_interp.featureviz.paper import course
from keras_sd_interp.featureviz.paper.descent import (DescentResult, DescentSettings,
                                                      optimize_latents, visualize_batches)

__all__ = ["DescentResult", "DescentSettings", "course", "optimize_latents",
           "visualize_batches"]
