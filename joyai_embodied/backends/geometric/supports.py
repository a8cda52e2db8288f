"""Which object stands on which: the bottom of every fitted footprint (the plane, or what is under it).

Works on :mod:`.boxes`' footprints (``low``/``top`` heights above the plane, ``rect`` in plane coordinates,
``support`` written here). Two ways to stand on something: over the top of an object whose top lies just
under this one's lowest point (a cube on a cube, a sphere on a plate), or lifted clear of the plane over an
object whose footprint it overlaps while that object's top is hidden under it or uneven (a bowl on a cookie
box, a ramekin, a stove's burner ring, in a drawer): then the box stops at its own lowest point.
"""

from __future__ import annotations

import numpy as np

from .shapes import FLAT_RATIO, Rectangle

#: Object points within this height of the support plane are left out of box fitting (metres): they carry
#: no shape, and a mask a pixel off its depth image leaks onto the table there.
SUPPORT_BAND_M = 0.005
#: An object whose top lies within this (metres) under another's lowest point may be what it stands on.
STACK_GAP_M = 0.015
#: In-plane slack (metres) when asking whether a point lies over a footprint.
FOOTPRINT_TOLERANCE_M = 0.01
#: An object whose lowest visible point is this far above the plane is not on the table (metres): a bowl on
#: a cookie box is 2 cm up; one on the table shows points down to the support band.
LIFTED_M = 0.015
#: An object over another covering this share of the smaller footprint rests on it (a bowl tilted on a
#: ramekin hangs its centre over the ramekin's rim but still covers ~35% of it).
SUPPORT_OVERLAP = 0.2
#: Sample points per side of the grid that measures footprint overlap.
OVERLAP_SAMPLES = 7


def resolve_supports(footprints: list) -> None:
    """Bottom of each object: the plane, or the top of an object under it (stacked objects).

    Two ways to stand on something: over the top of an object whose top lies just under this one's lowest
    point (a cube on a cube, a sphere on a plate), or (:func:`hidden_support`) lifted clear of the plane
    over an object whose footprint it overlaps while the support's top is hidden or uneven (a bowl on a
    small box or a ramekin, on a stove's burner ring, in a drawer): then the box stops at its lowest point.
    """
    for fp in sorted(footprints, key=lambda f: f.low):
        below = [other for other in footprints if other is not fp and other.top <= fp.low + STACK_GAP_M
                 and over(fp.rect.center, other)]
        support = max((other.top for other in below), default=0.0)
        # Only something that lifts it counts: a plate's rim under a cube's edge is not a support.
        if support > SUPPORT_BAND_M and fp.low > support - SUPPORT_BAND_M:
            fp.support = support
        elif hidden_support(fp, footprints):
            fp.support = fp.low


def hidden_support(fp, footprints: list) -> bool:
    """Whether ``fp`` rests on another object whose top face the camera cannot see under it.

    It must be lifted clear of the plane (:data:`LIFTED_M`: objects on the table show points down to it),
    and its footprint must overlap a lower object's (:data:`SUPPORT_OVERLAP` of the smaller footprint).
    """
    if fp.low < LIFTED_M:
        return False
    return any(other is not fp and other.low < fp.low - SUPPORT_BAND_M
               and overlap_share(fp.rect, other.rect) >= SUPPORT_OVERLAP for other in footprints)


def overlap_share(a: Rectangle, b: Rectangle) -> float:
    """Share of the smaller of two footprints that lies inside the other (a grid of sample points)."""
    small, large = (a, b) if float(np.prod(a.size)) <= float(np.prod(b.size)) else (b, a)
    points = small.center + (_OVERLAP_GRID * small.size) @ small.axes.T
    # Rectangle.contains for every sample at once: the same products and sums, element by element.
    offset = points - large.center
    local = np.stack([large.axes[0, 0] * offset[:, 0] + large.axes[1, 0] * offset[:, 1],
                      large.axes[0, 1] * offset[:, 0] + large.axes[1, 1] * offset[:, 1]], axis=1)
    inside = np.all(np.abs(local) <= large.size / 2, axis=1)
    return float(np.count_nonzero(inside)) / len(inside)


#: The unit grid of overlap samples (cell centres, in [-0.5, 0.5]), row by row.
_OVERLAP_STEPS = (np.arange(OVERLAP_SAMPLES) + 0.5) / OVERLAP_SAMPLES - 0.5
_OVERLAP_GRID = np.stack(np.meshgrid(_OVERLAP_STEPS, _OVERLAP_STEPS), axis=-1).reshape(-1, 2)


def over(point: np.ndarray, base, tolerance: float = FOOTPRINT_TOLERANCE_M) -> bool:
    """Whether an in-plane point lies over ``base``'s footprint (within ``tolerance`` metres).

    Flat bases are plates, round: their rectangle's corners are table, where a sphere beside the plate
    stands (its lowest visible point is well above the table, so height alone does not tell).
    """
    if not base.rect.contains(point, tolerance=tolerance):
        return False
    if base.top - base.support >= FLAT_RATIO * float(np.max(base.rect.size)):
        return True
    local = base.rect.axes.T @ (np.asarray(point, dtype=np.float64) - base.rect.center)
    return bool(np.linalg.norm(local / (base.rect.size / 2 + tolerance)) <= 1.0)
