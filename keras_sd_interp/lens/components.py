"""The U-Net's and the text encoder's components, as causal tracing and editing name them.

    unet_components(pipe)          # 70 sites: 22 ResBlocks, 16 x (attn1, attn2, ff)
    text_components(pipe, [1, 2])  # "text.layer_0.attn.out@1", ...: a text site at one token
    diffusers_name("spatial_transformer_7.attn2")   # SD's diffusers module name

A component is a site name, or a text site at one token ("site@token").
"""

from keras_sd_interp.lens.names import ordinal_of, text_layer_site
from keras_sd_interp.lens.taps import tap_shapes

UNET_KINDS = ("res", "attn1", "attn2", "ff")
TEXT_KINDS = ("attn.out", "mlp.out")


# -- components and their names -------------------------------------------------------------
def unet_components(pipe, kinds=UNET_KINDS):
    """U-Net component sites in network order (ResBlocks, then each transformer's attn1, attn2,
    ff where they occur): tiny and sd14 both have 22 ResBlocks and 16 transformers -> 70."""
    bad = sorted(set(kinds) - set(UNET_KINDS))
    if bad:
        raise ValueError(f"unknown U-Net component kinds {bad}; valid: {UNET_KINDS}")
    chosen = []
    for name in tap_shapes(pipe.diffusion_model):
        parts = name.split(".")
        if parts[0].startswith("res_block_") and len(parts) == 1 and "res" in kinds:
            chosen.append(name)
        elif parts[0].startswith("spatial_transformer_") and len(parts) == 2 \
                and parts[1] in kinds:
            chosen.append(name)
    return chosen


def unet_block(component):
    """"down", "mid" or "up": where a U-Net component sits (transformers 0-5 / 6 / 7-15,
    ResBlocks 0-7 / 8-9 / 10-21)."""
    if component.startswith("res_block_"):
        i = ordinal_of(component)
        return "down" if i < 8 else "mid" if i < 10 else "up"
    i = ordinal_of(component)
    return "down" if i < 6 else "mid" if i == 6 else "up"


def diffusers_name(component):
    """SD's diffusers module name of a U-Net component (sd14 topology), e.g.
    "spatial_transformer_7.attn2" -> "up_blocks.1.attentions.0.transformer_blocks.0.attn2",
    "res_block_8" -> "mid_block.resnets.0"."""
    if component.startswith("res_block_"):
        i = ordinal_of(component)
        if i < 8:
            return f"down_blocks.{i // 2}.resnets.{i % 2}"
        if i < 10:
            return f"mid_block.resnets.{i - 8}"
        return f"up_blocks.{(i - 10) // 3}.resnets.{(i - 10) % 3}"
    i = ordinal_of(component)
    kind = component.split(".")[1]
    if i < 6:
        block = f"down_blocks.{i // 2}.attentions.{i % 2}"
    elif i == 6:
        block = "mid_block.attentions.0"
    else:
        block = f"up_blocks.{(i - 7) // 3 + 1}.attentions.{(i - 7) % 3}"
    return f"{block}.transformer_blocks.0.{kind}"


def component_table(components):
    """Rows {"component", "block", "diffusers"} for U-Net components (docs, figures)."""
    return [{"component": c, "block": unet_block(c), "diffusers": diffusers_name(c)}
            for c in components]


def text_components(pipe, tokens, kinds=TEXT_KINDS):
    """Text-encoder components `text.layer_{i}.{kind}@{token}` for every layer, kind, token."""
    bad = sorted(set(kinds) - set(TEXT_KINDS))
    if bad:
        raise ValueError(f"unknown text component kinds {bad}; valid: {TEXT_KINDS}")
    layers = pipe.text_encoder.num_text_layers
    return [f"{text_layer_site(i, kind)}@{t}" for i in range(layers) for kind in kinds
            for t in tokens]


def split_component(component):
    """"text.layer_0.attn.out@2" -> ("text.layer_0.attn.out", 2); U-Net names -> (name, None)."""
    site, _, token = component.partition("@")
    return site, (int(token) if token else None)
