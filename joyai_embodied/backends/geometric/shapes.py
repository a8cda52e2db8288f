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
#: Flat and wide: a plate, lower than this share of its width (the simulator's plates are ~1.5 cm tall and
#: 14-18 cm across).
FLAT_RATIO = 0.35
# A sphere fit whose RMS residual is under this share of the radius is taken as a sphere.
_SPHERE_RESIDUAL = 0.06
# Side walls seen from outside: a circle fit this good (RMS / radius) is a round wall, an edge fit this good
# (RMS / footprint width) a flat one. The simulator's depth is exact; a real camera's few millimetres of
# noise stay under both on 4-6 cm objects.
_ROUND_WALL = 0.04
_FLAT_WALL = 0.02
# A wall arc whose circle is much wider than the arc itself is nearly straight: not evidence of roundness.
_MAX_RADIUS_PER_CHORD = 1.0


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


def outline(points: np.ndarray, cell: float = 5e-4) -> tuple[np.ndarray, float]:
    """Outline candidates and area of a dense (N, 2) footprint, on a grid of ``cell`` metres.

    Only the lowest and highest point of every grid column can lie on the convex hull, and of those only
    the ones on the hull of the grid points (found exactly, in integers, collinear points kept): thousands
    of depth pixels shrink to a few dozen candidates. Every extreme (min / max along a direction) of the
    candidates is the extreme of all the grid points, bit for bit. The area is that of their convex hull.

    Returns:
        ``(candidates (M, 2) in metres, area in square metres)``.
    """
    grid = np.round(np.asarray(points, dtype=np.float64) / cell).astype(np.int64)
    first = grid[:, 0].min()
    columns = grid[:, 0] - first
    lowest = np.full(int(columns.max()) + 1, np.iinfo(np.int64).max)
    highest = np.full(len(lowest), np.iinfo(np.int64).min)
    np.minimum.at(lowest, columns, grid[:, 1])
    np.maximum.at(highest, columns, grid[:, 1])
    used = np.flatnonzero(highest >= lowest)
    # Both chains at once: the upper chain of (x, y) is the lower chain of (x, -y).
    xs = np.concatenate([used, used])
    ys = np.concatenate([lowest[used], -highest[used]])
    hull = _lower_chains(xs, ys, len(used))
    ys[len(used):] *= -1
    candidates = np.stack([(xs[hull] + first).astype(np.float64), ys[hull]], axis=1) * cell
    # Hull area from support lines every 2 degrees: the polygon they bound circumscribes the hull
    # (0.01% larger for a disc), with no Python loop over points.
    support = (candidates @ _AREA_NORMALS.T).max(axis=0)
    following = _AREA_FOLLOWING
    # Vertex k: where the support lines k and k+1 meet (Cramer's rule on the 2x2 system).
    n1, n2, h1, h2 = _AREA_NORMALS, _AREA_NORMALS[following], support, support[following]
    det = n1[:, 0] * n2[:, 1] - n1[:, 1] * n2[:, 0]
    x = (h1 * n2[:, 1] - h2 * n1[:, 1]) / det
    y = (n1[:, 0] * h2 - n2[:, 0] * h1) / det
    area = 0.5 * abs(float(np.dot(x, y[following]) - np.dot(y, x[following])))  # y[following] is np.roll(y, -1)
    return candidates, area


#: Directions of the support lines that bound the hull area (every 2 degrees), and each one's successor.
_AREA_NORMALS = np.stack([np.cos(np.radians(np.arange(0.0, 360.0, 2.0))),
                          np.sin(np.radians(np.arange(0.0, 360.0, 2.0)))], axis=1)
_AREA_FOLLOWING = np.roll(np.arange(len(_AREA_NORMALS)), -1)


def _lower_chains(x: np.ndarray, y: np.ndarray, split: int) -> np.ndarray:
    """Indices of the lower convex chains of two runs of integer points (``[:split]``, ``[split:]``), each
    sorted by distinct ``x``.

    Collinear points are kept: extremes along a direction perpendicular to a chain's edge are ties between
    its points, and keeping them all keeps those extremes exact. Points strictly above the chain are dropped
    in rounds (each round drops every point strictly above the segment joining its two neighbours: none of
    them can be on the hull), which ends in a few rounds for the outlines of objects. The ends of each run
    are never dropped, so the runs do not interfere.
    """
    keep = np.arange(len(x))
    ends = np.zeros(len(x), dtype=bool)
    ends[[0, split - 1, split, len(x) - 1]] = True
    while len(keep) > 2:
        px, py = x[keep], y[keep]
        # cross((b - a), (c - b)) for consecutive triples a, b, c: < 0 turns right (b above the chain)
        cross = (px[1:-1] - px[:-2]) * (py[2:] - py[1:-1]) - (py[1:-1] - py[:-2]) * (px[2:] - px[1:-1])
        drop = np.zeros(len(keep), dtype=bool)
        drop[1:-1] = cross < 0
        drop &= ~ends[keep]
        if not drop.any():
            break
        keep = keep[~drop]
    return keep


def _spans(points: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per angle: the min and max of the points along the rotated axes, and the rectangle area."""
    c, s = np.cos(angles), np.sin(angles)
    along = points[:, :1] * c + points[:, 1:] * s
    across = -points[:, :1] * s + points[:, 1:] * c
    lo = np.stack([along.min(axis=0), across.min(axis=0)], axis=1)
    hi = np.stack([along.max(axis=0), across.max(axis=0)], axis=1)
    return lo, hi, np.prod(hi - lo, axis=1)


#: Orientations searched for the minimum-area rectangle: every degree, then every 0.05 degree around the best.
_COARSE_ANGLES = np.radians(np.arange(0.0, 90.0, 1.0))
_FINE_OFFSETS = np.radians(np.arange(-1.0, 1.0001, 0.05))


def min_area_rectangle(points: np.ndarray, outlined: tuple[np.ndarray, float] | None = None) -> Rectangle:
    """The minimum-area rectangle around (N, 2) points.

    Searched over orientations (a rectangle repeats every 90 degrees): every degree, then every 0.05
    degree around the best, vectorised over the outline candidates.

    Args:
        points: (N, 2) in-plane points.
        outlined: ``outline(points)`` when the caller has it already (it is the costly part).
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 3:
        center = pts.mean(axis=0) if len(pts) else np.zeros(2)
        span = np.ptp(pts, axis=0) if len(pts) else np.zeros(2)
        return Rectangle(center, np.maximum(span, 1e-3), np.eye(2), 0.0)
    candidates, area = outline(pts) if outlined is None else outlined
    best = _COARSE_ANGLES[int(np.argmin(_spans(candidates, _COARSE_ANGLES)[2]))]
    fine = best + _FINE_OFFSETS
    lo, hi, areas = _spans(candidates, fine)
    i = int(np.argmin(areas))
    angle = fine[i]
    axes = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return Rectangle(axes @ ((lo[i] + hi[i]) / 2), hi[i] - lo[i], axes, area)


def _fit_round(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Algebraic least-squares circle (N, 2) or sphere (N, 3): (centre, radius, RMS residual)."""
    p = np.asarray(points, dtype=np.float64)
    a = np.hstack([2 * p, np.ones((len(p), 1))])
    b = np.sum(p * p, axis=1)
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    center = solution[:-1]
    radius = float(np.sqrt(max(solution[-1] + center @ center, 0.0)))
    residual = float(np.sqrt(np.mean((np.linalg.norm(p - center, axis=1) - radius) ** 2)))
    return center, radius, residual


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares sphere through (N, 3) points: (centre, radius, RMS residual)."""
    p = np.asarray(points, dtype=np.float64)
    if len(p) > 2000:
        p = p[:: len(p) // 1000]  # a thousand points pin a sphere down as well as ten thousand
    return _fit_round(p)


def fit_circle(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Least-squares circle through (N, 2) points: (centre, radius, RMS residual)."""
    return _fit_round(points)


@dataclass(frozen=True)
class WallFit:
    """How the footprint of an object's side walls (points below its top face) looks from above.

    ``circle``: (centre, radius, RMS residual) of a circle fit. ``edge_angle`` and ``edge_residual``: the
    orientation (radians) of the rectangle whose edges the points hug best, and their RMS distance to
    its nearest edge. ``chord``: the largest extent of the points (metres).
    """

    circle: tuple[np.ndarray, float, float]
    edge_angle: float
    edge_residual: float
    chord: float

    @property
    def round(self) -> bool:
        """The walls lie on a circle (a cylinder's side), clearly better than on a rectangle's edges."""
        _, radius, residual = self.circle
        return (radius > 1e-3 and residual < _ROUND_WALL * radius and radius < _MAX_RADIUS_PER_CHORD * self.chord
                and self.edge_residual > 2 * residual)

    @property
    def flat(self) -> bool:
        """The walls lie on a rectangle's edges (a cube's faces), clearly better than on a circle."""
        _, radius, residual = self.circle
        straight = radius > _MAX_RADIUS_PER_CHORD * self.chord  # the best circle is nearly a line
        return (self.chord > 0 and self.edge_residual < _FLAT_WALL * self.chord
                and (straight or 2 * self.edge_residual < residual))


def fit_walls(points: np.ndarray) -> WallFit | None:
    """Fits a circle and an edge-hugging rectangle to the in-plane (N, 2) points of an object's side walls.

    A camera sees walls from outside: a cube's as one or two straight segments (an L), a cylinder's as an
    arc. Unlike the footprint's fill, this holds when the top face is hidden (something stands on the
    object) or an occluder cuts the outline. Returns None for fewer than 20 points.
    """
    p = np.asarray(points, dtype=np.float64)
    if len(p) < 20:
        return None
    if len(p) > 400:
        p = p[:: len(p) // 300]  # a few hundred points pin down a circle or a rectangle
    circle = fit_circle(p)
    centred = p - p.mean(axis=0)
    angles = _COARSE_ANGLES
    c, s = np.cos(angles), np.sin(angles)
    along = centred[:, :1] * c + centred[:, 1:] * s
    across = -centred[:, :1] * s + centred[:, 1:] * c
    # min is exact whatever the order: pairwise minima, no stacked (4, N, 90) copy
    edge = np.minimum(np.minimum(along - along.min(axis=0), along.max(axis=0) - along),
                      np.minimum(across - across.min(axis=0), across.max(axis=0) - across))
    rms = np.sqrt(np.mean(edge ** 2, axis=0))
    best = int(np.argmin(rms))
    chord = float(np.hypot(*np.ptp(p, axis=0)))
    return WallFit(circle, float(angles[best]), float(rms[best]), chord)


def rectangle_at(points: np.ndarray, angle: float, outlined: tuple[np.ndarray, float] | None = None) -> Rectangle:
    """The rectangle around (N, 2) points with its first axis at ``angle`` radians (hull area kept).

    ``outlined``: ``outline(points)`` when the caller has it already.
    """
    pts = np.asarray(points, dtype=np.float64)
    candidates, area = outline(pts) if outlined is None else outlined
    lo, hi, _ = _spans(candidates, np.array([angle]))
    axes = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return Rectangle(axes @ ((lo[0] + hi[0]) / 2), hi[0] - lo[0], axes, area)


def classify_shape(rect: Rectangle, height: float, sphere_residual_ratio: float | None,
                   sphere_diameter: float | None = None, top: Rectangle | None = None,
                   walls: WallFit | None = None) -> str:
    """Shape word from the footprint rectangle, the height and how well a sphere fits.

    Args:
        rect: the footprint's minimum-area rectangle (with its hull area).
        height: object height above its support, metres.
        sphere_residual_ratio: RMS sphere-fit residual / radius, or None when no fit was made.
        sphere_diameter: diameter of that sphere fit; a sphere must be as tall as it is round.
        top: the rectangle of the top face's points; cubes and cylinders differ most clearly there
            (a square vs a disc), and the top is the part an occluder in front hides last.
        walls: the fit of the side walls; when it is clear (straight faces or an arc) it decides cube vs
            cylinder, since it also holds for a top hidden under a stacked object or cut by an occluder.

    Returns:
        One of :data:`SHAPE_WORDS`.
    """
    width = float(np.max(rect.size))
    if width <= 0 or height <= 0:
        return "object"
    fill = rect.hull_area / rect.area if rect.area > 0 else 0.0
    if height < FLAT_RATIO * width and fill > _ROUND_FILL_MIN and fill < _SQUARE_FILL:
        return "plate"
    if sphere_residual_ratio is not None and sphere_residual_ratio < _SPHERE_RESIDUAL \
            and 0.7 < height / width < 1.4 \
            and (sphere_diameter is None or abs(sphere_diameter - height) < 0.15 * height):
        return "sphere"
    if walls is not None and walls.flat:
        return "cube"
    if walls is not None and walls.round:
        return "cylinder"
    if top is not None and top.area > 0 and float(np.min(top.size)) > 0.5 * float(np.max(top.size)):
        fill = top.hull_area / top.area
    if fill >= _SQUARE_FILL:
        return "cube"
    if fill >= _ROUND_FILL_MIN:
        return "cylinder"
    return "object"
