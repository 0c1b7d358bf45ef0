"""Text reports of what is inside a U-Net: the conv inventory and every tappable site."""

from keras_sd_interp.lens import taps
from keras_sd_interp.lens.catalog import list_sites
from keras_sd_interp.models.sampler import SAMPLER_SITES


def site_lines(shapes):
    """Lines "name  (shape)" for a dict name -> shape (as `lens.list_sites` gives it)."""
    return [f"{name:44s} {shape}" for name, shape in shapes.items()]


def inventory_table(unet):
    """The 52 3x3 kernels as text lines: conv index, layer index, tap name, role, kernel shape."""
    lines = [f"{'conv':>4} {'layer':>5}  {'tap name':24s} {'role':6s} kernel (3, 3, in, out)"]
    for entry in taps.conv_inventory(unet):
        lines.append(
            f"{entry.conv_index:>4} {entry.layer_index:>5}  {entry.name:24s} {entry.role:6s} "
            f"{entry.kernel_shape}"
        )
    return lines


def layer_table(unet):
    """The 66 layers as text lines: layer index, readable name, Keras class, output shape."""
    names = taps.layer_site_names(unet)
    shapes = taps.tap_shapes(unet)
    return [
        f"{index:>5}  {name:24s} {type(layer).__name__:20s} {shapes.get(name)}"
        for index, (layer, name) in enumerate(zip(unet.layers, names))
    ]


def report(unet):
    """The whole report as one string."""
    config = unet.config
    header = [
        f"U-Net {config.name!r}: widths {config.channels}, {config.num_heads} heads, context "
        f"{unet.max_text_length} x {config.context_dim}, image {unet.img_height}x"
        f"{unet.img_width}, latent {tuple(unet.inputs[0].shape[1:])}, "
        f"{unet.count_params():,} parameters",
        "",
        "Layers (paper layer index = position in model.layers):",
    ]
    return "\n".join(
        header + layer_table(unet)
        + ["", "3x3 convs (conv index):"] + inventory_table(unet)
        + ["", "Tappable sites (shape without batch):"] + site_lines(list_sites(unet))
    )


def text_report(text_encoder):
    """The text encoder's sites and the sampler's, as one string (for `lens.trace`)."""
    return "\n".join(
        ["Text-encoder sites (shape without batch; recorded once per generation):"]
        + site_lines(list_sites(text_encoder))
        + ["", "Sampler sites (one per denoising step, whole batch):"]
        + [f"{name:44s} (latent shape)" for name in SAMPLER_SITES]
    )
