"""Planar footprint geometry and shape classification for objects standing on a support plane.

Everything works in *plane coordinates*: (a, b) along two orthonormal in-plane axes and h, the height above
the support plane. Pure numpy, sized for a few thousand points per object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Shape words this module can return.
SHAPE_WORDS = ("cube", "cylinder", "sphere", "plate", "object")

# A footprint whose convex hull fills more than this share of its minimum-area rectangle is square-ish;
# a disc fills pi/4 = 0.785 of its square.
_SQUARE_FILL = 0.9
_ROUND_FILL_MIN = 0.68
# Flat and wide: a plate (the simulator's plates are ~1.5 cm tall and 14-18 cm across).
_FLAT_RATIO = 0.35
# A sphere fit whose RMS residual is under this share of the radius is taken as a sphere.
_SPHERE_RESIDUAL = 0.06


@dataclass(frozen=True)
class Rectangle:
    """An oriented rectangle in the plane: ``center`` (2,), ``size`` (2,) along ``axes`` columns (2x2)."""

    center: np.ndarray
    size: np.ndarray
    axes: np.ndarray
    hull_area: float

    @property
    def area(self) -> float:
        return float(self.size[0] * self.size[1])

    def contains(self, point: np.ndarray, tolerance: float = 0.0) -> bool:
        local = self.axes.T @ (np.asarray(point, dtype=np.float64) - self.center)
        return bool(np.all(np.abs(local) <= self.size / 2 + tolerance))


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull of (N, 2) points, counter-clockwise, by Andrew's monotone chain."""
    pts = np.unique(np.asarray(points, dtype=np.float64), axis=0)
    if len(pts) < 3:
        return pts

    def cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[np.ndarray] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list[np.ndarray] = []
    for p in pts[::-1]:
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def _polygon_area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def outline_candidates(points: np.ndarray, cell: float = 5e-4) -> np.ndarray:
    """The points that can lie on the convex hull of a dense (N, 2) cloud, snapped to ``cell`` metres.

    Only the lowest and highest point of every column of the grid can be a hull vertex, so a cloud of
    thousands of depth pixels shrinks to a few hundred candidates before the (Python) hull loop.
    """
    grid = np.round(np.asarray(points, dtype=np.float64) / cell).astype(np.int64)
    order = np.lexsort((grid[:, 1], grid[:, 0]))
    grid = grid[order]
    starts = np.flatnonzero(np.r_[True, grid[1:, 0] != grid[:-1, 0]])
    ends = np.r_[starts[1:], len(grid)] - 1
    return np.unique(np.vstack([grid[starts], grid[ends]]), axis=0) * cell


def min_area_rectangle(points: np.ndarray) -> Rectangle:
    """The minimum-area rectangle around (N, 2) points (rotating calipers over the hull's edges)."""
    pts = np.asarray(points, dtype=np.float64)
    hull = convex_hull(outline_candidates(pts)) if len(pts) else pts
    if len(hull) < 3:
        center = pts.mean(axis=0) if len(pts) else np.zeros(2)
        span = np.ptp(pts, axis=0) if len(pts) else np.zeros(2)
        return Rectangle(center, np.maximum(span, 1e-3), np.eye(2), 0.0)
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    best = None
    for angle in angles:
        axes = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        local = hull @ axes
        lo, hi = local.min(axis=0), local.max(axis=0)
        area = float(np.prod(hi - lo))
        if best is None or area < best[0]:
            best = (area, axes, lo, hi)
    _, axes, lo, hi = best
    center = axes @ ((lo + hi) / 2)
    return Rectangle(center, hi - lo, axes, _polygon_area(hull))


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares sphere through (N, 3) points: (centre, radius, RMS residual)."""
    p = np.asarray(points, dtype=np.float64)
    a = np.hstack([2 * p, np.ones((len(p), 1))])
    b = np.sum(p * p, axis=1)
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    center = solution[:3]
    radius = float(np.sqrt(max(solution[3] + center @ center, 0.0)))
    residual = float(np.sqrt(np.mean((np.linalg.norm(p - center, axis=1) - radius) ** 2)))
    return center, radius, residual


def classify_shape(rect: Rectangle, height: float, sphere_residual_ratio: float | None) -> str:
    """Shape word from the footprint rectangle, the height and how well a sphere fits.

    Args:
        rect: the footprint's minimum-area rectangle (with its hull area).
        height: object height above its support, metres.
        sphere_residual_ratio: RMS sphere-fit residual / radius, or None when no fit was made.

    Returns:
        One of :data:`SHAPE_WORDS`.
    """
    width = float(np.max(rect.size))
    if width <= 0 or height <= 0:
        return "object"
    fill = rect.hull_area / rect.area if rect.area > 0 else 0.0
    if height < _FLAT_RATIO * width and fill > _ROUND_FILL_MIN and fill < _SQUARE_FILL:
        return "plate"
    if sphere_residual_ratio is not None and sphere_residual_ratio < _SPHERE_RESIDUAL \
            and 0.7 < height / width < 1.4:
        return "sphere"
    if fill >= _SQUARE_FILL:
        return "cube"
    if fill >= _ROUND_FILL_MIN:
        return "cylinder"
    return "object"
