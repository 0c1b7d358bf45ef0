"""The atlas's small pictures: a unit's map as a translucent heat layer, and an activity curve
as SVG points (drawing only; the numbers come from `atlas`)."""

import numpy as np


def heat_rgba(heat_map, top):
    """(h, w) float map -> uint8 (h, w, 4): matplotlib's inferno, alpha growing with the value
    from 0 (clear: the generated image shows through) to 0.7, scaled by `top` (the unit's
    strongest value, so a unit's maps share one scale)."""
    from matplotlib import colormaps

    scaled = np.clip(np.asarray(heat_map, np.float32) / max(float(top), 1e-8), 0.0, 1.0)
    rgba = colormaps["inferno"](scaled)
    rgba[..., 3] = 0.7 * scaled
    return (rgba * 255).round().astype(np.uint8)


def curve_points(values, width=240, height=60):
    """A polyline's "x,y x,y ..." for `values` (S,), min..max scaled to the box (y down)."""
    values = np.asarray(values, np.float64)
    low, high = float(values.min()), float(values.max())
    span = high - low or 1.0
    xs = np.linspace(0, width, len(values)) if len(values) > 1 else np.array([width / 2])
    ys = height - (values - low) / span * height
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
