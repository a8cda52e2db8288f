"""Masks robust to segmentation rim bleed: rim pixels whose depth is not their object's surface.

Renderers that draw segmentation in a separate pass (robosuite) do not register it exactly with the depth:
about 10% of each mask's 1-pixel rim carries a depth between the object and what lies behind it (measured on
LIBERO frames: 1-10 cm behind the object's own neighbouring pixels). Lifted as they are, those pixels hang
the object's id on points floating toward the table or the object under it: a bowl's box reaches the table,
a stove's centre drifts. :func:`drop_rim_bleed` removes them (no depth: nothing is known there).

A rim pixel (one with an 8-neighbour of another id) bleeds when its depth differs by more than
:data:`RIM_JUMP_M` from every interior pixel of its own object within two pixels (:data:`REACH`; own-id
pixels that are not rim pixels themselves: the rim's mixed pixels come in runs, and compare alike). A pixel without an interior
neighbour (a sliver one or two pixels wide) is kept: there is nothing to judge it by.

It runs on every exact-depth frame with a segmentation image (the tabletop simulator's too, where it drops a
handful of pixels), so only the rim is gathered: ~2 ms of CPU at 640x480, ~1.5 ms at 256x256 (was 7-8 / 2 ms
with full-image shifts).
"""

from __future__ import annotations

import numpy as np

#: A rim pixel farther from (or nearer than) every interior neighbour of its own object by more than this
#: (metres) is not on that object's surface: well over one pixel's depth step on a surface seen at up to
#: ~70 degrees from face-on at arm's length.
RIM_JUMP_M = 0.01
#: 8-neighbourhood offsets (row, column).
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
#: Where a rim pixel looks for interior pixels of its object: its 8 neighbours and the 8 two steps away
#: (a pixel bled one beyond the mask has only rim pixels next to it).
REACH = NEIGHBOURS + tuple((2 * dr, 2 * dc) for dr, dc in NEIGHBOURS)
#: The four neighbour directions that, with their opposites, make the 8-neighbourhood: right, down, down-right,
#: down-left. Comparing each pixel with its neighbour in one of these and marking both pixels of a differing
#: pair costs 4 full-image comparisons instead of 8.
HALF_NEIGHBOURS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _neighbour_pair(dr: int, dc: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices (a, b) of an image such that ``image[b]`` holds the (dr, dc) neighbours of ``image[a]`` (dr >= 0)."""
    rows_a, rows_b = slice(None, -dr if dr else None), slice(dr, None)
    cols_a = slice(None, -dc) if dc > 0 else slice(-dc, None)
    cols_b = slice(dc, None) if dc > 0 else slice(None, dc if dc else None)
    return (rows_a, cols_a), (rows_b, cols_b)


PAIRS = tuple(_neighbour_pair(dr, dc) for dr, dc in HALF_NEIGHBOURS)

def drop_rim_bleed(segmentation: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """``depth`` with the bleeding rim pixels of every object mask set to NaN.

    Args:
        segmentation: (H, W) int instance ids (0 = background), registered to ``depth`` up to the rim.
        depth: (H, W) metric depth (NaN or 0 = invalid).

    Returns:
        ``depth`` itself when no pixel bleeds, else a float32 copy with NaN at the bleeding pixels.
    """
    ids = np.asarray(segmentation)
    height, width = ids.shape
    rim = np.zeros((height, width), dtype=bool)
    for a, b in PAIRS:
        differ = ids[a] != ids[b]
        rim[a] |= differ
        rim[b] |= differ
    candidates = np.flatnonzero(rim & (ids > 0))
    if len(candidates) == 0:
        return depth
    flat_ids, flat_rim = ids.reshape(-1), rim.reshape(-1)
    flat_depth = np.asarray(depth).reshape(-1)
    rows, cols = np.divmod(candidates, width)
    own_id = flat_ids[candidates]
    own_z = _valid_depth(flat_depth[candidates])
    closest = np.full(len(candidates), np.inf, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        for dr, dc in REACH:
            r, c = rows + dr, cols + dc
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            n = np.where(inside, r * width + c, 0)
            z = _valid_depth(flat_depth[n])
            interior = inside & (flat_ids[n] == own_id) & ~flat_rim[n] & np.isfinite(z)
            closest = np.where(interior, np.minimum(closest, np.abs(z - own_z)), closest)
    bleeds = np.isfinite(closest) & (closest > RIM_JUMP_M)
    if not bleeds.any():
        return depth
    out = np.array(depth, dtype=np.float32, copy=True)
    out.reshape(-1)[candidates[bleeds]] = np.nan
    return out


def _valid_depth(z: np.ndarray) -> np.ndarray:
    """float32 depth with invalid values (non-finite or <= 0) as NaN."""
    z = z.astype(np.float32)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(z) & (z > 0), z, np.float32(np.nan))
