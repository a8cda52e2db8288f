"""How much of each object its camera sees, and the depth/id images a cloud shows its source camera.

- :func:`project_cloud`: the nearest point per pixel of a (possibly edited) cloud seen from its source
  camera, so an edited scene is judged as that camera would see it.
- :func:`visible_fraction`: the share of a fitted shape's camera-facing surface not hidden by something
  nearer, outside the image, or on a pixel without depth.
"""

from __future__ import annotations

import functools

import numpy as np

from ...camera import image_pixels
from ...types import CameraPose
from .cloud import SceneCloud

#: Surface samples: points on a sphere (Fibonacci lattice), a face grid's side, a cylinder's ring and rows.
SPHERE_SAMPLES = 300
FACE_GRID = 8
RING_SAMPLES = 32
RING_ROWS = 6
#: Samples sit this share of the half-size inside the surface, so rounding never puts them past an edge.
SAMPLE_INSET = 0.9
#: Sphere samples lower than this (unit shape, half-size 0.5) face the support, which hides them.
SPHERE_HIDDEN_BELOW = -0.3
#: A sample is seen when the depth at its pixel is at most this much nearer (metres) ...
SEEN_TOLERANCE_M = 0.01
#: ... plus this many pixel footprints (the fitted box is not the exact surface).
SEEN_TOLERANCE_PX = 2.0
#: Cloud points nearer their camera than this (metres) are not projected (at or behind the camera).
NEAR_M = 1e-3


def project_cloud(cloud: SceneCloud) -> tuple[np.ndarray, np.ndarray]:
    """Depth and id images of ``cloud`` seen from its source camera (nearest point per pixel).

    Returns:
        ``(depth, ids)``: HxW float64 depth (NaN where no point lands: nothing known) and HxW int32 ids.
    """
    camera = cloud.source
    depth = np.full(camera.height * camera.width, np.nan)
    ids = np.zeros(camera.height * camera.width, dtype=np.int32)
    if len(cloud) == 0:
        return depth.reshape(camera.height, camera.width), ids.reshape(camera.height, camera.width)
    rows, cols, z, inside = image_pixels(cloud.points, camera, near_m=NEAR_M)
    flat = rows[inside] * camera.width + cols[inside]
    zs, point_ids = z[inside], cloud.ids[inside]
    order = np.argsort(-zs, kind="stable")  # write far to near: the nearest point wins each pixel
    depth[flat[order]] = zs[order]
    ids[flat[order]] = point_ids[order]
    return depth.reshape(camera.height, camera.width), ids.reshape(camera.height, camera.width)


@functools.lru_cache(maxsize=8)
def surface_samples(shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Points and outward normals on a unit shape centred at 0 with half-size 0.5 (slightly inset).

    Cached per shape word: the returned arrays are shared and read-only.
    """
    points, normals = build_surface_samples(shape)
    points.flags.writeable = False
    normals.flags.writeable = False
    return points, normals


def build_surface_samples(shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Uncached :func:`surface_samples`: sphere, cylinder/plate (side ring and top disc) or box faces."""
    if shape == "sphere":
        n = SPHERE_SAMPLES
        i = np.arange(n) + 0.5
        polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5 ** 0.5) * i
        normals = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], 1)
        return 0.5 * SAMPLE_INSET * normals, normals
    half = 0.5 * SAMPLE_INSET
    grid = (np.arange(FACE_GRID) + 0.5) / FACE_GRID * 2 * half - half
    g1, g2 = [a.ravel() for a in np.meshgrid(grid, grid)]
    if shape in ("cylinder", "plate"):
        angles = np.linspace(0, 2 * np.pi, RING_SAMPLES, endpoint=False)
        heights = (np.arange(RING_ROWS) + 0.5) / RING_ROWS * 2 * half - half
        ang, hh = [a.ravel() for a in np.meshgrid(angles, heights)]
        side_n = np.stack([np.cos(ang), np.sin(ang), np.zeros_like(ang)], 1)
        side_p = np.stack([0.5 * np.cos(ang), 0.5 * np.sin(ang), hh], 1)
        disc = np.stack([g1, g2], 1)
        disc = disc[np.linalg.norm(disc, axis=1) < half]
        top_p = np.hstack([disc, np.full((len(disc), 1), 0.5)])
        top_n = np.tile([0.0, 0.0, 1.0], (len(disc), 1))
        return np.vstack([side_p, top_p]), np.vstack([side_n, top_n])
    points, normals = [], []
    for axis in range(3):
        for sign in (1.0, -1.0):
            if axis == 2 and sign < 0:
                continue  # the bottom face rests on its support: never visible
            face = np.zeros((len(g1), 3))
            others = [a for a in range(3) if a != axis]
            face[:, others[0]], face[:, others[1]], face[:, axis] = g1, g2, 0.5 * sign
            normal = np.zeros((len(g1), 3))
            normal[:, axis] = sign
            points.append(face)
            normals.append(normal)
    return np.vstack(points), np.vstack(normals)


def visible_fraction(instance_id: int, shape: str, centroid: np.ndarray, extent: np.ndarray,
                     rotation: np.ndarray, camera: CameraPose, depth_image: np.ndarray,
                     id_image: np.ndarray) -> float:
    """Share of the fitted shape's camera-facing surface that is not hidden, weighted by projected area.

    A surface sample is hidden when it falls outside the image, on a pixel without depth (nothing known
    there), or behind something else (a nearer depth with another id). Samples landing just off the
    object's silhouette (pixel rounding) see background behind them and count as visible.
    """
    local_points, local_normals = surface_samples(shape)
    points = centroid + (local_points * extent) @ rotation.T
    normals = (local_normals / np.maximum(extent, 1e-6)) @ rotation.T  # a scaled shape's normals
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    to_camera = camera.position - points
    facing_cos = np.einsum("ij,ij->i", normals, to_camera) / np.linalg.norm(to_camera, axis=1)
    facing = facing_cos > 0
    if shape == "sphere":
        facing &= local_points[:, 2] > SPHERE_HIDDEN_BELOW  # the underside is hidden by the support
    if not facing.any():
        return 0.0
    weights = facing_cos[facing]
    rows, cols, z, inside = image_pixels(points[facing], camera, near_m=0.0)
    rows, cols, z_in = rows[inside], cols[inside], z[inside]
    seen = np.zeros(len(z), dtype=bool)
    tolerance = SEEN_TOLERANCE_M + SEEN_TOLERANCE_PX * z_in / camera.intrinsics[0, 0]
    pixel_depth = depth_image[rows, cols]
    own = id_image[rows, cols] == instance_id
    # Seen: the pixel shows this object, or something farther (the sample's own pixel, rounded off the
    # silhouette). Hidden: something nearer, no depth at all (unknown), or outside the image.
    seen[inside] = own | (np.isfinite(pixel_depth) & (pixel_depth >= z_in - tolerance))
    return float(np.sum(weights[seen]) / np.sum(weights))
