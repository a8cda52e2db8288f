"""The support plane objects stand on: a frame on it, and the two ways of finding it.

- With a segmentation image: a seeded numpy RANSAC on the background (id 0) points around the objects
  (:func:`plane_from_background`).
- Without one: Open3D RANSAC peels off a few planes and the table is the one nearest the camera among
  those parallel to the largest (:func:`table_plane`); the floor is often the largest.

Planes are ``[a, b, c, d]`` with ``a x + b y + c z + d = 0``, unit normal, oriented so the camera is on the
positive ("up") side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InvalidInputError
from ...types import CameraPose

#: Seed of every RANSAC here: the same frame always gives the same plane (and so the same objects).
RNG_SEED = 0
#: Points within this height of the support plane belong to it (metres) when there is no segmentation:
#: a real depth camera's noise on a table at arm's length is a few millimetres.
PLANE_THRESHOLD_M = 0.006
#: RANSAC inlier distance (metres) on segmented background points: they are exact (simulator) or already
#: told apart from the objects, so a tight band keeps the table and not the floor or a wall's foot.
BACKGROUND_THRESHOLD_M = 0.005
#: Every n-th background point is used: a plane needs few points, and a full frame has 300k.
BACKGROUND_STRIDE = 11
#: Background points within this margin (metres, plus a share of the objects' size) of the objects' 3D
#: bounds are the table under them, not the floor or the far wall.
NEAR_OBJECTS_MARGIN_M = 0.1
NEAR_OBJECTS_MARGIN_SHARE = 0.25
#: Fewer background points than this near the objects: use every background point instead.
MIN_NEAR_POINTS = 50
#: Numpy RANSAC: plane hypotheses tried, and points scored per hypothesis (enough for a dominant plane).
RANSAC_ITERATIONS = 64
RANSAC_SAMPLE = 2000
#: Open3D RANSAC without segmentation: planes peeled off (table, floor, a wall) and iterations per plane.
MAX_PLANES = 3
O3D_RANSAC_ITERATIONS = 200
#: A plane must hold this many points and this share of the sample to count (smaller "planes" are noise).
MIN_PLANE_POINTS = 50
MIN_PLANE_SHARE = 0.05
#: Planes whose normals agree to this cosine (~18 degrees) are parallel: the table over the floor.
PARALLEL_COS = 0.95


@dataclass(frozen=True)
class PlaneFrame:
    """Orthonormal frame on a support plane: in-plane axes ``e1``, ``e2`` and the up ``normal``."""

    plane: np.ndarray
    e1: np.ndarray
    e2: np.ndarray

    @classmethod
    def from_plane(cls, plane: np.ndarray) -> "PlaneFrame":
        normal = np.asarray(plane[:3], dtype=np.float64)
        # e1 follows world x as closely as possible, so on a level table (a, b) are world (x, y).
        e1 = np.array([1.0, 0.0, 0.0]) - normal[0] * normal
        if np.linalg.norm(e1) < 1e-6:
            e1 = np.array([0.0, 1.0, 0.0]) - normal[1] * normal
        e1 /= np.linalg.norm(e1)
        return cls(np.asarray(plane, dtype=np.float64), e1, np.cross(normal, e1))

    @property
    def normal(self) -> np.ndarray:
        return self.plane[:3]

    def to_plane(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World (N, 3) -> in-plane (N, 2) coordinates and height above the plane (N,)."""
        p = np.asarray(points, dtype=np.float64)
        return np.stack([p @ self.e1, p @ self.e2], axis=1), p @ self.normal + self.plane[3]

    def to_world(self, ab: np.ndarray, h: float | np.ndarray) -> np.ndarray:
        """In-plane coordinates (..., 2) and height -> world points (..., 3)."""
        ab = np.asarray(ab, dtype=np.float64)
        origin = -self.plane[3] * self.normal  # the plane point closest to the world origin
        return (origin + ab[..., :1] * self.e1 + ab[..., 1:2] * self.e2
                + np.asarray(h, dtype=np.float64)[..., None] * self.normal)


def level_plane_under(points: np.ndarray) -> np.ndarray:
    """A level plane under the lowest of ``points`` (the fallback when no support was found)."""
    lowest = float(np.min(points[:, 2])) if len(points) else 0.0
    return np.array([0.0, 0.0, 1.0, -lowest])


def orient_up(plane: np.ndarray, camera: CameraPose) -> np.ndarray:
    """Normalises (a, b, c, d) and flips it so the camera is on the positive ("up") side."""
    plane = np.asarray(plane, dtype=np.float64) / np.linalg.norm(plane[:3])
    if plane[:3] @ camera.position + plane[3] < 0:
        plane = -plane
    return plane


def ransac_plane(points: np.ndarray, threshold: float, iterations: int = RANSAC_ITERATIONS) -> np.ndarray | None:
    """Numpy RANSAC plane (seeded, deterministic), refined by least squares on its inliers; None if degenerate."""
    if len(points) < 3:
        return None
    rng = np.random.default_rng(RNG_SEED)
    sample = points[rng.choice(len(points), size=min(len(points), RANSAC_SAMPLE), replace=False)]
    triples = sample[rng.integers(0, len(sample), size=(iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    usable = norms > 1e-9  # three distinct, non-collinear points
    if not usable.any():
        return None
    normals = normals[usable] / norms[usable, None]
    offsets = -np.einsum("ij,ij->i", normals, triples[usable, 0])
    counts = np.count_nonzero(np.abs(sample @ normals.T + offsets) < threshold, axis=0)
    best = int(np.argmax(counts))
    inliers = sample[np.abs(sample @ normals[best] + offsets[best]) < threshold]
    centre = inliers.mean(axis=0)
    normal = np.linalg.svd(inliers - centre, full_matrices=False)[2][-1]
    return np.append(normal, -normal @ centre)


def plane_from_background(points: np.ndarray, ids: np.ndarray, camera: CameraPose) -> np.ndarray | None:
    """The support plane from the id-0 points under and around the objects; None when there is none."""
    points, ids = points[::BACKGROUND_STRIDE], ids[::BACKGROUND_STRIDE]
    background = ids == 0
    candidates = points[background]
    if not background.all() and background.any():
        # Around the objects in 3D: the table they stand on, not the floor or the far wall.
        on_objects = points[~background]
        lo, hi = on_objects.min(axis=0), on_objects.max(axis=0)
        margin = NEAR_OBJECTS_MARGIN_M + NEAR_OBJECTS_MARGIN_SHARE * np.maximum(hi - lo, 0)
        near = np.all((candidates >= lo - margin) & (candidates <= hi + margin), axis=1)
        if np.count_nonzero(near) >= MIN_NEAR_POINTS:
            candidates = candidates[near]
    plane = ransac_plane(candidates, threshold=BACKGROUND_THRESHOLD_M)
    return None if plane is None else orient_up(plane, camera)


def table_plane(o3d, sample: np.ndarray, camera: CameraPose) -> tuple[np.ndarray, np.ndarray]:
    """The support plane among the largest planes of ``sample``, and its inlier points.

    The largest plane in view is often the floor. Up to :data:`MAX_PLANES` planes are peeled off by
    RANSAC; of those parallel to the largest and holding at least :data:`MIN_PLANE_SHARE` of the points,
    the one nearest the camera (the table top rather than the floor under it) is the support.

    Raises:
        InvalidInputError: (field ``depth``) no plane holds enough points: too few valid depth pixels, or
            depth too noisy to show a flat surface. Objects cannot be segmented without a support plane.
    """
    o3d.utility.random.seed(RNG_SEED)
    remaining = sample
    planes: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(MAX_PLANES):
        if len(remaining) < max(MIN_PLANE_POINTS, MIN_PLANE_SHARE * len(sample)):
            break
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(remaining))
        model, inliers = pcd.segment_plane(distance_threshold=PLANE_THRESHOLD_M, ransac_n=3,
                                           num_iterations=O3D_RANSAC_ITERATIONS)
        inliers = np.asarray(inliers, dtype=np.int64)
        if len(inliers) < max(MIN_PLANE_POINTS, MIN_PLANE_SHARE * len(sample)) \
                or not np.all(np.isfinite(model)) or np.linalg.norm(np.asarray(model)[:3]) < 1e-9:
            break
        planes.append((orient_up(np.asarray(model), camera), remaining[inliers]))
        remaining = np.delete(remaining, inliers, axis=0)
    if not planes:
        raise InvalidInputError(
            "depth", f"a visible support plane to find objects on without a segmentation image (at least "
                     f"{MIN_PLANE_POINTS} valid depth pixels within {PLANE_THRESHOLD_M * 1000:g} mm of one flat "
                     "surface), or a segmentation image",
            f"{len(sample)} valid pixels sampled and no such plane")
    largest = planes[0][0]
    parallel = [(plane, pts) for plane, pts in planes if abs(plane[:3] @ largest[:3]) > PARALLEL_COS]
    # Signed height of the camera above each plane: the smallest is the plane nearest the camera.
    return min(parallel, key=lambda item: item[0][:3] @ camera.position + item[0][3])
