"""The autoencoder of SD v1.4 at size "mini": keras-cv's own VAE layers (PaddedConv2D,
ResnetBlock, AttentionBlock) in keras-cv's order at one small width, random weights only.

The toolkit reads nothing inside the VAE; these only keep a mini pipeline's decode and encode
(image (b, H, W, 3) in [-1, 1] <-> scaled latent (b, H/8, W/8, 4)) as cheap as its U-Net.
"""

import keras
from keras_cv.src.models.stable_diffusion.attention_block import AttentionBlock
from keras_cv.src.models.stable_diffusion.padded_conv2d import PaddedConv2D
from keras_cv.src.models.stable_diffusion.resnet_block import ResnetBlock

SCALE = 0.18215  # SD's latent scale factor (keras-cv's)
WIDTH = 32  # a multiple of 32: keras-cv's GroupNormalization uses 32 groups


def build_mini_decoder(img_height, img_width, width=WIDTH):
    """Scaled latent (b, H/8, W/8, 4) -> image (b, H, W, 3): keras-cv's Decoder, shortened to
    one ResnetBlock per level at `width` channels."""
    stack = [keras.layers.Input((img_height // 8, img_width // 8, 4)),
             keras.layers.Rescaling(1.0 / SCALE), PaddedConv2D(4, 1),
             PaddedConv2D(width, 3, padding=1), ResnetBlock(width), AttentionBlock(width)]
    for _ in range(3):
        stack += [keras.layers.UpSampling2D(2), PaddedConv2D(width, 3, padding=1),
                  ResnetBlock(width)]
    stack += [keras.layers.GroupNormalization(epsilon=1e-5), keras.layers.Activation("swish"),
              PaddedConv2D(3, 3, padding=1)]
    return keras.Sequential(stack, name="mini_decoder")


def build_mini_image_encoder(width=WIDTH):
    """Image (b, H, W, 3) -> scaled latent mean (b, H/8, W/8, 4): keras-cv's ImageEncoder,
    shortened to one ResnetBlock per level at `width` channels."""
    stack = [keras.layers.Input((None, None, 3)), PaddedConv2D(width, 3, padding=1),
             ResnetBlock(width)]
    for _ in range(3):
        stack += [PaddedConv2D(width, 3, padding=((0, 1), (0, 1)), strides=2),
                  ResnetBlock(width)]
    stack += [AttentionBlock(width), keras.layers.GroupNormalization(epsilon=1e-5),
              keras.layers.Activation("swish"), PaddedConv2D(8, 3, padding=1),
              PaddedConv2D(8, 1), keras.layers.Lambda(lambda x: x[..., :4] * SCALE)]
    return keras.Sequential(stack, name="mini_image_encoder")
