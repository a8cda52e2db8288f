"""Masks robust to segmentation rim bleed: rim pixels whose depth is what lies behind the object.

Renderers that draw segmentation in a separate pass (robosuite) misregister a mask by up to a pixel: about
10% of each mask's 1-pixel rim carries the depth of the surface behind it (the table, the object under it).
Lifted as they are, those pixels hang the object's id on points centimetres away: a bowl's box reaches the
table, a stove's centre drifts. :func:`reassign_rim_bleed` gives each such pixel the id of the neighbour whose
surface its depth continues (0 = background when that is the table).

A rim pixel bleeds when it lies farther than its own object's neighbours by more than :data:`RIM_JUMP_M` and
within :data:`RIM_MATCH_M` of a neighbour of another id: an object's own silhouette pixel, even on a surface
seen at a grazing angle, lies between the object and the background, not on the background.
"""

from __future__ import annotations

import numpy as np

#: A rim pixel farther than the nearest of its own object's 8-neighbours by more than this (metres) does not
#: continue the object's surface (1 cm: well over a pixel's step on any surface but a grazing one).
RIM_JUMP_M = 0.01
#: ... and it belongs to the neighbour of another id whose depth it is within this of (metres).
RIM_MATCH_M = 0.005
#: 8-neighbourhood offsets (row, column).
NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def reassign_rim_bleed(segmentation: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """``segmentation`` with bleeding rim pixels given the id of the surface their depth belongs to.

    Args:
        segmentation: (H, W) int instance ids (0 = background).
        depth: (H, W) metric depth registered to the rgb (NaN or 0 = invalid).

    Returns:
        A new (H, W) int32 id image (the input when nothing bleeds). Pixels of id 0 never change.
    """
    ids = np.asarray(segmentation).astype(np.int32, copy=False)
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
    height, width = ids.shape
    pad_ids = np.pad(ids, 1, constant_values=-1)
    pad_z = np.pad(z, 1, constant_values=np.nan)
    own_nearest = np.full(ids.shape, np.inf, dtype=np.float32)
    best_gap = np.full(ids.shape, np.inf, dtype=np.float32)
    best_id = np.full(ids.shape, -1, dtype=np.int32)
    with np.errstate(invalid="ignore"):
        for dr, dc in NEIGHBOURS:
            n_ids = pad_ids[1 + dr:1 + dr + height, 1 + dc:1 + dc + width]
            n_z = pad_z[1 + dr:1 + dr + height, 1 + dc:1 + dc + width]
            same = (n_ids == ids) & np.isfinite(n_z)
            own_nearest = np.where(same, np.minimum(own_nearest, n_z), own_nearest)
            other = (n_ids != ids) & (n_ids >= 0) & np.isfinite(n_z)
            gap = np.abs(n_z - z)
            better = other & (gap < best_gap)
            best_gap = np.where(better, gap, best_gap)
            best_id = np.where(better, n_ids, best_id)
        bleeds = ((ids > 0) & np.isfinite(own_nearest) & (z - own_nearest > RIM_JUMP_M)
                  & (best_gap <= RIM_MATCH_M) & (best_id >= 0))
    if not bleeds.any():
        return ids
    out = ids.copy()
    out[bleeds] = best_id[bleeds]
    return out
