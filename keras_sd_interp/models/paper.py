"""The two models a filter visualization needs, built as the paper builds them.

    unet, decoder = unet_and_decoder("tiny")        # context length 0; decoder latent -> image

The U-Net gets an empty context (max_text_length=0, "the cross-attention layers become all
pass"); the decoder comes from the matching pipeline (keras-cv's for sd14, the bundled one for
tiny). Both load the same weights, or, with `random_weights`, are initialised from a fixed seed
so that a resumed run continues with the same model.
"""

import keras

from keras_sd_interp.models import load_pipeline, load_unet

RANDOM_WEIGHTS_SEED = 0


def paper_unet(model="tiny", img_height=None, img_width=None, weights_dir=None,
               random_weights=False):
    """The U-Net with context length 0 (random weights: always the same ones)."""
    if random_weights:
        keras.utils.set_random_seed(RANDOM_WEIGHTS_SEED)
    return load_unet(model, img_height, img_width, 0, weights_dir=weights_dir,
                     random_weights=random_weights)


def unet_and_decoder(model="tiny", img_height=None, img_width=None, weights_dir=None,
                     random_weights=False):
    """Returns (unet with context length 0, decoder latent -> image in [-1, 1])."""
    unet = paper_unet(model, img_height, img_width, weights_dir, random_weights)
    pipeline = load_pipeline(model, unet.img_height, unet.img_width, weights_dir=weights_dir,
                             random_weights=random_weights)
    return unet, pipeline.decoder
