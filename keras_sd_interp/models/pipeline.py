"""Stable Diffusion v1.4 text-to-image with the rebuilt U-Net.

`SD14Pipeline` is keras-cv's `StableDiffusion` (same tokenizer, text encoder, decoder, image
encoder and DDIM sampler, so `text_to_image` behaves as keras-cv's does) whose
`diffusion_model` is the rebuilt `SDUNet`, and whose weights come from `weights.py`.

    pipe = SD14Pipeline(512, 512, weights_dir="/data/sd14")   # or weights_dir=None: download
    images = pipe.text_to_image("a photograph of an astronaut riding a horse", seed=0)
    taps.run_with_cache(pipe.diffusion_model, inputs, ["res_block_3.conv1"])
"""

import numpy as np

from keras_cv.src.models.stable_diffusion.clip_tokenizer import SimpleTokenizer
from keras_cv.src.models.stable_diffusion.decoder import Decoder
from keras_cv.src.models.stable_diffusion.image_encoder import ImageEncoder
from keras_cv.src.models.stable_diffusion.stable_diffusion import MAX_PROMPT_LENGTH
from keras_cv.src.models.stable_diffusion.stable_diffusion import StableDiffusion

from keras_sd_interp.models.config import check_size, sized_config
from keras_sd_interp.models.sampler import Sampler
from keras_sd_interp.models.sd14_mini import build_mini_decoder, build_mini_image_encoder
from keras_sd_interp.models.text_encoder import build_sd14_text_encoder
from keras_sd_interp.models.unet import SDUNet
from keras_sd_interp.models.weights import load_sd14_weights, sd14_weight_path

END_OF_TEXT = 49407  # CLIP's end token, also its padding


class LensSampling:
    """Mixin: `text_to_image` with keras-cv's signature, run by the toolkit's own sampler
    (`keras_sd_interp.models.sampler.Sampler`: one compiled step per denoising step, a batch of
    different prompts in one call, visible to `lens.trace`)."""

    _sampler = None

    @property
    def sampler(self):
        if self._sampler is None:
            self._sampler = Sampler(self)
        return self._sampler

    def text_to_image(self, prompt, negative_prompt=None, batch_size=1, num_steps=50,
                      unconditional_guidance_scale=7.5, seed=None):
        """keras-cv's `text_to_image`; `prompt` may also be a list of prompts.

        Returns uint8 images (len(prompts) * batch_size, H, W, C), prompt-major.
        """
        generation = self.sampler.generate(
            prompt, negative_prompt=negative_prompt, batch_size=batch_size,
            num_steps=num_steps, unconditional_guidance_scale=unconditional_guidance_scale,
            seed=seed,
        )
        return generation.uint8()


class SD14Pipeline(LensSampling, StableDiffusion):
    """keras-cv's StableDiffusion (v1.4) with the rebuilt U-Net.

    Args:
        img_height, img_width: image size (keras-cv rounds to multiples of 128).
        weights_dir: directory with keras-cv's `.h5` files, or None to download them.
        jit_compile: XLA-compile the component models, as keras-cv does.
        random_weights: build with random weights (tests, benchmarks); nothing is loaded.
        size: "full" (SD v1.4's widths) or "mini" (its layers and site names at small widths,
            with a small VAE; random weights only: `weights_dir` then only gives the BPE file).
    """

    def __init__(
        self, img_height=512, img_width=512, weights_dir=None, jit_compile=False,
        random_weights=False, size="full",
    ):
        check_size("sd14", size, random_weights)
        self.config = sized_config("sd14", size)
        self.config.check_image_size(img_height, img_width)
        super().__init__(img_height, img_width, jit_compile)
        # keras-cv rounds sizes to multiples of 128; the U-Net needs multiples of 64 only.
        self.img_height, self.img_width = img_height, img_width
        self.size = size
        self.weights_dir = weights_dir
        self.random_weights = random_weights

    def _load(self, model, component):
        if not self.random_weights:
            load_sd14_weights(model, component, self.weights_dir)
        if self.jit_compile:
            model.compile(jit_compile=True)
        return model

    @property
    def diffusion_model(self):
        if self._diffusion_model is None:
            unet = SDUNet(self.img_height, self.img_width, MAX_PROMPT_LENGTH, config=self.config)
            self._diffusion_model = self._load(unet, "diffusion_model")
        return self._diffusion_model

    @property
    def text_encoder(self):
        if self._text_encoder is None:
            encoder = build_sd14_text_encoder(MAX_PROMPT_LENGTH, self.size)
            self._text_encoder = self._load(encoder, "text_encoder")
        return self._text_encoder

    @property
    def decoder(self):
        if self._decoder is None:
            if self.size == "mini":
                decoder = build_mini_decoder(self.img_height, self.img_width)
            else:
                decoder = Decoder(self.img_height, self.img_width, download_weights=False)
            self._decoder = self._load(decoder, "decoder")
        return self._decoder

    @property
    def image_encoder(self):
        if self._image_encoder is None:
            encoder = build_mini_image_encoder() if self.size == "mini" else \
                ImageEncoder(download_weights=False)
            self._image_encoder = self._load(encoder, "image_encoder")
        return self._image_encoder

    def tokens(self, prompts):
        """Prompts (list of str) -> int32 array (batch, 77): CLIP BPE ids with start and end
        tokens, padded with the end token (as keras-cv's `encode_text`)."""
        rows = []
        for prompt in prompts:
            ids = self.tokenizer.encode(prompt)
            if len(ids) > MAX_PROMPT_LENGTH:
                raise ValueError(f"prompt {prompt!r} is {len(ids)} tokens long with start and "
                                 f"end; SD v1.4 takes at most {MAX_PROMPT_LENGTH}")
            rows.append(ids + [END_OF_TEXT] * (MAX_PROMPT_LENGTH - len(ids)))
        return np.array(rows, dtype="int32")

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = SimpleTokenizer(sd14_weight_path("bpe_vocab", self.weights_dir))
        return self._tokenizer
