"""The bundled model's autoencoder: a small KL (VAE-style) encoder and decoder with a 4-channel
latent at 1/4 of the image size, used exactly where Stable Diffusion uses its VAE.

As in keras-cv, the image encoder returns latents multiplied by a scale factor (SD: 0.18215)
chosen so that latents have unit variance, and the decoder divides by it first.
"""

import keras
from keras import layers


def _conv(filters, strides=1):
    return layers.Conv2D(filters, 3, strides=strides, padding="same", activation="swish")


def build_vae_encoder(height=32, width=64, latent_channels=4):
    """Image (batch, H, W, 1) in [-1, 1] -> mean and log-variance, each (batch, H/4, W/4, 4)."""
    image = layers.Input((height, width, 1), name="image")
    x = _conv(32)(image)
    x = _conv(32, strides=2)(x)
    x = _conv(64)(x)
    x = _conv(64, strides=2)(x)
    x = _conv(64)(x)
    moments = layers.Conv2D(2 * latent_channels, 3, padding="same")(x)
    mean, log_var = moments[..., :latent_channels], moments[..., latent_channels:]
    return keras.Model(image, [mean, log_var], name="tiny_vae_encoder")


def build_decoder(height=32, width=64, latent_channels=4, scale=1.0):
    """Scaled latent (batch, H/4, W/4, 4) -> image (batch, H, W, 1), about [-1, 1] (unclipped)."""
    latent = layers.Input((height // 4, width // 4, latent_channels), name="latent")
    x = layers.Rescaling(1.0 / scale)(latent)
    x = _conv(64)(x)
    x = _conv(64)(x)
    x = layers.UpSampling2D(2)(x)
    x = _conv(64)(x)
    x = _conv(32)(x)
    x = layers.UpSampling2D(2)(x)
    x = _conv(32)(x)
    image = layers.Conv2D(1, 3, padding="same")(x)
    return keras.Model(latent, image, name="tiny_decoder")


def build_image_encoder(vae_encoder, scale):
    """Image (batch, H, W, 1) -> scaled latent mean (batch, H/4, W/4, 4), keras-cv's convention."""
    mean, _ = vae_encoder.outputs
    return keras.Model(vae_encoder.inputs[0], layers.Rescaling(scale)(mean), name="tiny_image_encoder")
