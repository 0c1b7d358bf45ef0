"""The bundled small text-to-image model as a keras-cv Stable Diffusion pipeline.

`TinyPipeline` is keras-cv's `StableDiffusionBase` (same DDIM sampler with classifier-free
guidance and the same scaled-linear noise schedule, `generate_image` and `text_to_image` as
keras-cv has them) with the tiny components: the `tiny` SDUNet, a word tokenizer, a small
CLIP-style text encoder and a small VAE. Images are 32x64 grayscale, latents 8x16x4.

    pipe = load_pipeline("tiny")
    images = pipe.text_to_image("a sneaker and a bag", batch_size=8, seed=0)  # (8, 32, 64, 1)
"""

from keras import ops
from keras import random
from keras_cv.src.models.stable_diffusion.stable_diffusion import StableDiffusionBase

from keras_sd_interp.models import bundled
from keras_sd_interp.models.config import TINY
from keras_sd_interp.models.layers import timestep_embedding
from keras_sd_interp.models.pipeline import LensSampling
from keras_sd_interp.models.tiny_text import VOCABULARY, WordTokenizer, build_text_encoder
from keras_sd_interp.models.tiny_vae import build_decoder, build_image_encoder, build_vae_encoder
from keras_sd_interp.models.unet import SDUNet

# Used when no bundle is installed (random weights): the pipeline's shapes, nothing learned.
DEFAULT_RECORD = {"latent_scale": 1.0, "max_length": 8, "text_layers": 2}


class TinyPipeline(LensSampling, StableDiffusionBase):
    """keras-cv's Stable Diffusion pipeline around the bundled tiny model.

    Args:
        img_height, img_width: image size (multiples of 32; trained at 32x64).
        random_weights: build with random weights instead of loading the bundle.
        bundle_dir: where the bundle lives (default: inside the package).
    """

    def __init__(self, img_height=32, img_width=64, random_weights=False,
                 bundle_dir=bundled.ASSETS_DIR):
        TINY.check_image_size(img_height, img_width)
        # keras-cv's __init__ rounds sizes to multiples of 128; the tiny model needs 32.
        super().__init__(128, 128, jit_compile=False)
        self.img_height, self.img_width = img_height, img_width
        self.config = TINY
        self.random_weights = random_weights
        self.bundle_dir = bundle_dir
        self.record = DEFAULT_RECORD if random_weights else bundled.read_record(bundle_dir)
        self.max_length = self.record["max_length"]

    def _load(self, model, component):
        if not self.random_weights:
            bundled.load_component(model, component, self.bundle_dir)
        return model

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            vocabulary = self.record.get("vocabulary", VOCABULARY)  # older bundles: the default
            self._tokenizer = WordTokenizer(vocabulary, max_length=self.max_length)
        return self._tokenizer

    @property
    def text_encoder(self):
        if self._text_encoder is None:
            encoder = build_text_encoder(
                len(self.tokenizer.vocabulary), self.max_length, TINY.context_dim,
                self.record["text_layers"], self.record.get("text_heads", 4),
            )
            self._text_encoder = self._load(encoder, "text_encoder")
        return self._text_encoder

    @property
    def diffusion_model(self):
        if self._diffusion_model is None:
            unet = SDUNet(self.img_height, self.img_width, self.max_length, config=TINY)
            self._diffusion_model = self._load(unet, "unet")
        return self._diffusion_model

    @property
    def vae_encoder(self):
        if getattr(self, "_vae_encoder", None) is None:
            encoder = build_vae_encoder(self.img_height, self.img_width)
            self._vae_encoder = self._load(encoder, "vae_encoder")
        return self._vae_encoder

    @property
    def image_encoder(self):
        if self._image_encoder is None:
            self._image_encoder = build_image_encoder(self.vae_encoder, self.record["latent_scale"])
        return self._image_encoder

    @property
    def decoder(self):
        if self._decoder is None:
            decoder = build_decoder(
                self.img_height, self.img_width, scale=self.record["latent_scale"]
            )
            self._decoder = self._load(decoder, "decoder")
        return self._decoder

    def tokens(self, prompts):
        """Prompts (list of str) -> int32 tensor (batch, max_length)."""
        return ops.convert_to_tensor(self.tokenizer(prompts), dtype="int32")

    def encode_prompts(self, prompts):
        """Prompts (list of str) -> contexts (batch, max_length, context_dim)."""
        tokens = self.tokens(prompts)
        positions = ops.repeat(self._get_pos_ids(), len(prompts), axis=0)
        return self.text_encoder({"tokens": tokens, "positions": positions})

    def encode_text(self, prompt):
        """One prompt -> context (1, max_length, context_dim), as keras-cv's encode_text."""
        return self.encode_prompts([prompt])

    def _get_unconditional_context(self):
        return self.encode_prompts([""])

    def _get_pos_ids(self):
        return ops.expand_dims(ops.arange(self.max_length, dtype="int32"), 0)

    def _get_timestep_embedding(self, timestep, batch_size, dim=None, max_period=10000):
        embedding = timestep_embedding(ops.convert_to_tensor([timestep]), TINY.time_embedding_dim)
        return ops.repeat(embedding, batch_size, axis=0)

    def _get_initial_diffusion_noise(self, batch_size, seed):
        factor = TINY.latent_factor
        shape = (batch_size, self.img_height // factor, self.img_width // factor, 4)
        return random.normal(shape, seed=seed)
