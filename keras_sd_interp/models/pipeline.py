"""Stable Diffusion v1.4 text-to-image with the rebuilt U-Net.

`SD14Pipeline` is keras-cv's `StableDiffusion` (same tokenizer, text encoder, decoder, image
encoder and DDIM sampler, so `text_to_image` behaves as keras-cv's does) whose
`diffusion_model` is the rebuilt `SDUNet`, and whose weights come from `weights.py`.

    pipe = SD14Pipeline(512, 512, weights_dir="/data/sd14")   # or weights_dir=None: download
    images = pipe.text_to_image("a photograph of an astronaut riding a horse", seed=0)
    taps.run_with_cache(pipe.diffusion_model, inputs, ["res_block_3.conv1"])
"""

import math

from keras import ops
from keras_cv.src.models.stable_diffusion.clip_tokenizer import SimpleTokenizer
from keras_cv.src.models.stable_diffusion.decoder import Decoder
from keras_cv.src.models.stable_diffusion.image_encoder import ImageEncoder
from keras_cv.src.models.stable_diffusion.stable_diffusion import MAX_PROMPT_LENGTH
from keras_cv.src.models.stable_diffusion.stable_diffusion import StableDiffusion
from keras_cv.src.models.stable_diffusion.text_encoder import TextEncoder

from keras_sd_interp.models.config import SD14
from keras_sd_interp.models.unet import SDUNet
from keras_sd_interp.models.weights import sd14_weight_path


def timestep_embedding(timesteps, dim, max_period=10000):
    """keras-cv's sinusoidal timestep embedding, batched.

    Args:
        timesteps: float tensor (batch,), training step indices 0..999.
        dim: embedding length (320 for SD).

    Returns:
        (batch, dim) tensor: concat([cos(t * f), sin(t * f)]), f = max_period ** (-k / (dim/2)).
    """
    half = dim // 2
    freqs = ops.exp(-math.log(max_period) * ops.arange(0, half, dtype="float32") / half)
    args = ops.cast(ops.reshape(timesteps, (-1, 1)), "float32") * freqs[None]
    return ops.concatenate([ops.cos(args), ops.sin(args)], axis=-1)


class SD14Pipeline(StableDiffusion):
    """keras-cv's StableDiffusion (v1.4) with the rebuilt U-Net.

    Args:
        img_height, img_width: image size (keras-cv rounds to multiples of 128).
        weights_dir: directory with keras-cv's `.h5` files, or None to download them.
        jit_compile: XLA-compile the component models, as keras-cv does.
        random_weights: build with random weights (tests, benchmarks); nothing is loaded.
    """

    def __init__(
        self, img_height=512, img_width=512, weights_dir=None, jit_compile=False,
        random_weights=False,
    ):
        super().__init__(img_height, img_width, jit_compile)
        self.config = SD14
        self.weights_dir = weights_dir
        self.random_weights = random_weights

    def _load(self, model, component):
        if not self.random_weights:
            model.load_weights(sd14_weight_path(component, self.weights_dir))
        if self.jit_compile:
            model.compile(jit_compile=True)
        return model

    @property
    def diffusion_model(self):
        if self._diffusion_model is None:
            unet = SDUNet(self.img_height, self.img_width, MAX_PROMPT_LENGTH, config=SD14)
            self._diffusion_model = self._load(unet, "diffusion_model")
        return self._diffusion_model

    @property
    def text_encoder(self):
        if self._text_encoder is None:
            encoder = TextEncoder(MAX_PROMPT_LENGTH, download_weights=False)
            self._text_encoder = self._load(encoder, "text_encoder")
        return self._text_encoder

    @property
    def decoder(self):
        if self._decoder is None:
            decoder = Decoder(self.img_height, self.img_width, download_weights=False)
            self._decoder = self._load(decoder, "decoder")
        return self._decoder

    @property
    def image_encoder(self):
        if self._image_encoder is None:
            self._image_encoder = self._load(ImageEncoder(download_weights=False), "image_encoder")
        return self._image_encoder

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = SimpleTokenizer(sd14_weight_path("bpe_vocab", self.weights_dir))
        return self._tokenizer
