"""Sizes of the U-Net: Stable Diffusion v1.4 (`sd14`) and the bundled small model (`tiny`).

Both presets have the same topology (66 entries in `model.layers`, 52 3x3 kernels in the same
order); only widths differ. A layer index or conv index therefore means the same place in both.

`SD14_MINI` is SD v1.4 at small widths (size "mini": the same layers, site names and 70 causal
tracing components, a 12-layer CLIP text encoder with CLIP's vocabulary, see
`text_encoder.SD14_MINI_TEXT`), for tests with random weights only: SD v1.4's weight files need
the full widths, so `load_pipeline` / `load_unet` refuse size "mini" without random_weights.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Widths of the keras-cv Stable Diffusion U-Net.

    Attributes:
        name: preset name.
        channels: widths of the three resolution levels (SD: 320, 640, 1280).
        num_heads: attention heads in every SpatialTransformer; head size = width / heads.
        context_dim: width of the text encoder's output (SD v1.x: 768).
        time_embedding_dim: length of the sinusoidal timestep embedding fed to the U-Net (320).
        time_hidden_dim: width of the time MLP that every ResBlock reads (1280).
        norm_groups: GroupNormalization groups (keras-cv: Keras' default, 32).
        latent_channels: channels of the autoencoder's latent (4).
        latent_factor: image pixels per latent pixel along each side (SD's VAE: 8).
        size: "full" (the preset's real widths, the ones its weights have) or "mini" (SD v1.4's
            architecture at small widths, random weights only).
    """

    name: str
    channels: tuple = (320, 640, 1280)
    num_heads: int = 8
    context_dim: int = 768
    time_embedding_dim: int = 320
    time_hidden_dim: int = 1280
    norm_groups: int = 32
    latent_channels: int = 4
    latent_factor: int = 8
    size: str = "full"

    def head_sizes(self):
        """Head size at each level, e.g. (40, 80, 160) for SD v1.4."""
        return tuple(width // self.num_heads for width in self.channels)

    def image_multiple(self):
        """Image sides must be a multiple of this: three 2x downsamplings of the latent."""
        return self.latent_factor * 8

    def check_image_size(self, img_height, img_width):
        """Raises ValueError unless both sides are positive multiples of `image_multiple()`."""
        multiple = self.image_multiple()
        for side_name, side in (("img_height", img_height), ("img_width", img_width)):
            if side <= 0 or side % multiple:
                raise ValueError(
                    f"{side_name}={side} is not valid for the {self.name!r} U-Net: image sides "
                    f"must be positive multiples of {multiple} (latent factor "
                    f"{self.latent_factor} x three 2x downsamplings), e.g. {4 * multiple}"
                )


SD14 = UNetConfig(name="sd14")

TINY = UNetConfig(
    name="tiny",
    channels=(32, 64, 96),
    num_heads=4,
    context_dim=64,
    time_embedding_dim=32,
    time_hidden_dim=128,
    norm_groups=8,
    latent_factor=4,
)

# SD v1.4's layers at a tenth of its widths (head sizes 4, 8, 16), context = the mini text width.
SD14_MINI = dataclasses.replace(SD14, channels=(32, 64, 128), context_dim=96,
                                time_embedding_dim=32, time_hidden_dim=128, size="mini")

PRESETS = {"sd14": SD14, "tiny": TINY}
SIZES = ("full", "mini")


def check_size(model, size, random_weights):
    """Raises ValueError unless `size` is valid for `model`: "full" always; "mini" only for
    "sd14" with random weights (SD v1.4's weight files need its full widths)."""
    if size not in SIZES:
        raise ValueError(f"size={size!r}: choose one of {list(SIZES)}")
    if size == "full":
        return
    if getattr(model, "name", model) != "sd14":
        raise ValueError(f"size='mini' is SD v1.4's architecture at small widths: it goes with "
                         f"model 'sd14', not {getattr(model, 'name', model)!r}")
    if not random_weights:
        raise ValueError("size='mini' has random weights only: SD v1.4's weight files need its "
                         "full widths; pass random_weights=True, or size='full' for real weights")


def sized_config(model, size="full"):
    """The UNetConfig of `model` (a preset name or UNetConfig) at `size` ("full" or "mini")."""
    config = get_config(model)
    check_size(config, size, random_weights=True)  # the weights are the loaders' to check
    return SD14_MINI if size == "mini" else config


def get_config(name_or_config):
    """Returns a UNetConfig for a preset name ('sd14', 'tiny') or passes a UNetConfig through."""
    if isinstance(name_or_config, UNetConfig):
        return name_or_config
    if name_or_config not in PRESETS:
        raise ValueError(
            f"unknown model {name_or_config!r}: choose one of {sorted(PRESETS)}"
        )
    return PRESETS[name_or_config]
