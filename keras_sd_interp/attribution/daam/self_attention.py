"""Self-attention maps: where one image pixel looks, from the attn1.probs a DAAM trace recorded
(`daam.trace(pipe, self_attention=True)` or a list of layers)."""

from keras_sd_interp.attribution.daam.arrays import aggregate, map_grid


def self_attention_map(tc, pixel, image=0, layers=None, heads=None):
    """(H, W): where image pixel (y, x) attends in self-attention (attn1.probs summed over
    steps; upscaled, clamped, averaged over heads and the recorded layers)."""
    if not tc.self_layers:
        raise ValueError("self_attention_map needs a trace opened with self_attention=True "
                         "(or a list of layers)")
    image = tc.check_image(image)
    height, width = tc.image_hw
    y, x = pixel
    if not (0 <= y < height and 0 <= x < width):
        raise ValueError(f"pixel {pixel!r} is outside the image: y in 0..{height - 1}, "
                         f"x in 0..{width - 1}")
    layers = tc.self_layers if layers is None else tc.check_layers(layers)
    missing = sorted(set(layers) - set(tc.self_layers))
    if missing:
        raise ValueError(f"layers {missing} had no self-attention recorded: recorded "
                         f"{tc.self_layers}")
    heads = tc.select_heads(heads)
    maps = []
    for i in layers:
        probs = tc.summed(tc.site(i, "attn1.probs"), image)[heads]   # (heads, q, k)
        h, w, _ = map_grid(probs.shape[-1], tc.latent_hw)
        query = (y * h // height) * w + (x * w // width)
        maps.append(probs[:, query, :][..., None])                  # (heads, hw, 1)
    out = aggregate(maps, tc.latent_hw, tc.image_hw, [[0]])
    return out[:, :, 0].mean(axis=(0, 1))
