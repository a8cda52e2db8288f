"""Colour words for object names, from the RGB of an object's pixels.

Hue decides the chromatic colours; saturation and brightness decide white, gray and black. The hue
bands are centred on the simulator's palette (``sim_envs.COLORS``) and wide enough for real cameras.
"""

from __future__ import annotations

import numpy as np

#: Every colour word this module can return.
COLOR_WORDS = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "brown",
               "white", "gray", "black")

# Upper hue bound (degrees) of each chromatic band, in order; red wraps around 0/360.
_HUE_BANDS = ((15.0, "red"), (42.0, "orange"), (75.0, "yellow"), (165.0, "green"), (200.0, "cyan"),
              (255.0, "blue"), (300.0, "purple"), (340.0, "pink"), (360.0, "red"))


def representative_rgb(colors: np.ndarray) -> np.ndarray:
    """Median RGB of the brightest quarter of ``colors`` (N, 3) uint8, as floats in [0, 1].

    The brightest quarter is the best-lit face of the object: shaded faces darken every colour
    towards brown, gray or black, and under a single lamp half of an object can be in shade.
    """
    colors = np.asarray(colors, dtype=np.float64).reshape(-1, 3)
    if colors.size == 0:
        return np.zeros(3)
    brightness = colors.max(axis=1)
    lit = colors[brightness >= np.percentile(brightness, 75)]
    return np.median(lit, axis=0) / 255.0


def color_name(rgb: np.ndarray) -> str:
    """The colour word for one RGB triple in [0, 1] (see :data:`COLOR_WORDS`)."""
    r, g, b = (float(c) for c in np.clip(rgb, 0.0, 1.0))
    high, low = max(r, g, b), min(r, g, b)
    saturation = 0.0 if high <= 1e-6 else (high - low) / high
    if high < 0.18:
        return "black"
    if saturation < 0.25:
        return "white" if high > 0.6 else ("gray" if high > 0.25 else "black")
    delta = high - low
    if high == r:
        hue = 60.0 * (((g - b) / delta) % 6.0)
    elif high == g:
        hue = 60.0 * ((b - r) / delta + 2.0)
    else:
        hue = 60.0 * ((r - g) / delta + 4.0)
    for bound, word in _HUE_BANDS:
        if hue < bound:
            # Dark, moderately saturated orange/red is what brown looks like to a camera.
            if word in ("orange", "red") and 10.0 <= hue and high < 0.45:
                return "brown"
            return word
    return "red"


#: Colour classes of :func:`hue_classes`: the chromatic bands in order (red once), then achromatic, then dark.
HUE_CLASSES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink", "achromatic", "dark")


def hue_classes(colors: np.ndarray) -> np.ndarray:
    """Per pixel, the index in :data:`HUE_CLASSES` of its hue band, for (N, 3) uint8 RGB.

    Unlike :func:`color_name` it ignores brightness (a shaded face keeps its hue, while its colour word may
    turn brown or gray), so the pixels of one matte object share a class whichever face they are on.
    Unsaturated pixels are "achromatic" (white, gray), very dark ones "dark" (hue is noise there).
    """
    rgb = np.asarray(colors, dtype=np.float32).reshape(-1, 3) / 255.0
    high, low = rgb.max(axis=1), rgb.min(axis=1)
    delta = high - low
    safe = np.where(delta > 1e-6, delta, 1.0)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    hue = np.where(high == r, ((g - b) / safe) % 6.0,
                   np.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) * 60.0
    bounds = np.array([bound for bound, _ in _HUE_BANDS])
    band = np.minimum(np.searchsorted(bounds, hue, side="right"), len(bounds) - 1)
    words = [word for _, word in _HUE_BANDS]
    band_class = np.array([HUE_CLASSES.index(word) for word in words], dtype=np.int64)[band]
    saturation = np.where(high > 1e-6, delta / np.maximum(high, 1e-6), 0.0)
    classes = np.where(saturation < 0.25, HUE_CLASSES.index("achromatic"), band_class)
    return np.where(high < 0.18, HUE_CLASSES.index("dark"), classes)
