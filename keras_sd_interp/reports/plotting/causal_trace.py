"""Causal-tracing figures as in Basu et al.: effect over U-Net components in network order, and
the text encoder's layers x tokens map."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
import numpy as np  # noqa: E402

BAND_COLORS = {"down": "#dbe9f6", "mid": "#f6e7c8", "up": "#dcf2dc"}
KIND_COLORS = {"res": "#4c72b0", "attn1": "#55a868", "attn2": "#c44e52", "ff": "#8172b2"}


def _kind(component):
    return "res" if component.startswith("res_block_") else component.split(".")[1]


def unet_effect_figure(components, effects, blocks, title="", errors=None):
    """Bars of the indirect effect (C,) for U-Net components in network order, coloured by kind
    (ResBlock, self-attention, cross-attention, feed-forward), on down / mid / up bands."""
    figure, axes = plt.subplots(figsize=(max(8.0, 0.16 * len(components)), 3.4))
    x = np.arange(len(components))
    start = 0
    for i in range(1, len(blocks) + 1):
        if i == len(blocks) or blocks[i] != blocks[start]:
            axes.axvspan(start - 0.5, i - 0.5, color=BAND_COLORS[blocks[start]], zorder=0)
            axes.text((start + i - 1) / 2, 1.0, blocks[start], ha="center", va="bottom",
                      transform=axes.get_xaxis_transform(), fontsize=9)
            start = i
    kinds = [_kind(c) for c in components]
    axes.bar(x, effects, color=[KIND_COLORS[k] for k in kinds], yerr=errors, width=0.8,
             error_kw={"elinewidth": 0.6}, zorder=2)
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_xticks(x)
    axes.set_xticklabels([c.replace("spatial_transformer_", "st").replace("res_block_", "rb")
                          for c in components], rotation=90, fontsize=6)
    axes.set_xlim(-0.5, len(components) - 0.5)
    axes.set_ylabel("indirect effect")
    handles = [Patch(color=color, label=kind) for kind, color in KIND_COLORS.items()]
    axes.legend(handles=handles, fontsize=7, ncol=4, loc="upper right")
    axes.set_title(title, fontsize=9, pad=14)
    return figure


def text_map_figure(maps, token_labels, titles, title=""):
    """Heat maps (layers, tokens), one per component kind, side by side."""
    panel_width = max(3.2, 0.3 * len(token_labels))   # room for one upright label per token
    figure, axes = plt.subplots(1, len(maps), figsize=(panel_width * len(maps) + 1,
                                                       0.5 * len(maps[0]) + 1.6), squeeze=False)
    limit = max(float(np.nanmax(np.abs(m))) for m in maps) or 1.0
    for ax, effect_map, name in zip(axes[0], maps, titles):
        image = ax.imshow(effect_map, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        ax.set_xticks(range(len(token_labels)))
        ax.set_xticklabels(token_labels, rotation=90, fontsize=7)
        ax.set_yticks(range(len(effect_map)))
        ax.set_yticklabels([f"layer {i}" for i in range(len(effect_map))], fontsize=7)
        ax.set_title(name, fontsize=9)
    figure.colorbar(image, ax=list(axes[0]), shrink=0.8, label="indirect effect")
    figure.suptitle(title, fontsize=9, y=1.04)
    return figure
