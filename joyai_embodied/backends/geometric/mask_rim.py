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
PAD = 2


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
    padded = np.pad(ids.astype(np.int32, copy=False), PAD, constant_values=-1)
    rim = np.zeros((height + 2 * PAD, width + 2 * PAD), dtype=bool)
    inner = rim[PAD:-PAD, PAD:-PAD]  # a view: writes land in ``rim``
    for dr, dc in NEIGHBOURS:
        other = padded[PAD + dr:PAD + dr + height, PAD + dc:PAD + dc + width]
        inner |= (other != ids) & (other >= 0)
    candidates = np.flatnonzero(inner & (ids > 0))
    if len(candidates) == 0:
        return depth
    z = np.pad(np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32), PAD,
               constant_values=np.nan).reshape(-1)
    flat_ids, flat_rim = padded.reshape(-1), rim.reshape(-1)
    stride = width + 2 * PAD
    # Candidate positions in the padded image.
    at = (candidates // width + PAD) * stride + candidates % width + PAD
    own_id, own_z = flat_ids[at], z[at]
    closest = np.full(len(at), np.inf, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        for dr, dc in REACH:
            n = at + dr * stride + dc
            interior = (flat_ids[n] == own_id) & ~flat_rim[n] & np.isfinite(z[n])
            closest = np.where(interior, np.minimum(closest, np.abs(z[n] - own_z)), closest)
    bleeds = np.isfinite(closest) & (closest > RIM_JUMP_M)
    if not bleeds.any():
        return depth
    out = np.array(depth, dtype=np.float32, copy=True)
    out.reshape(-1)[candidates[bleeds]] = np.nan
    return out
