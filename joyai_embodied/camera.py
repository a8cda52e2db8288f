"""Camera geometry in the OpenCV convention (x right, y down, z forward; world z up).

Pure numpy; every function takes and returns float64 arrays.
"""

from __future__ import annotations

import numpy as np

from .errors import ImpossibleCameraMoveError
from .types import CameraMove, CameraPose


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """cam_to_world of a camera at ``eye`` whose optical axis (+z) points at ``target``."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ImpossibleCameraMoveError("camera", "an eye distinct from the target", "eye == target")
    forward /= norm
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-6:  # looking straight along up: pick any horizontal right
        right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def world_to_camera(cam_to_world: np.ndarray) -> np.ndarray:
    """The 4x4 world-to-camera transform of a rigid ``cam_to_world`` (the closed-form inverse)."""
    pose = np.asarray(cam_to_world, dtype=np.float64)
    rotation_t = pose[:3, :3].T
    result = np.eye(4)
    result[:3, :3] = rotation_t
    result[:3, 3] = -rotation_t @ pose[:3, 3]
    return result


def to_camera(points_world: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """World points (N, 3) expressed in the camera frame (OpenCV axes), float64."""
    world_to_cam = world_to_camera(cam_to_world)
    return np.asarray(points_world, dtype=np.float64).reshape(-1, 3) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]


def projection_matrix(intrinsics: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """3x4 ``K [R | t]``: homogeneous world points -> ``(u z, v z, z)`` (pixel coordinates times depth)."""
    return np.asarray(intrinsics, dtype=np.float64) @ world_to_camera(cam_to_world)[:3]


def project(points_world: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Projects (N, 3) world points; returns pixel coordinates (N, 2) as (u, v) and camera depth (N,).

    Points at or behind the camera centre get non-finite or meaningless (u, v); callers mask on depth.
    """
    cam = to_camera(points_world, cam_to_world)
    return pixels_of(cam, intrinsics), cam[:, 2]


def pixels_of(points_camera: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """(N, 2) pixel coordinates (u, v) of camera-frame points (N, 3); not finite where z is 0."""
    cam = np.asarray(points_camera, dtype=np.float64).reshape(-1, 3)
    k = np.asarray(intrinsics, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2]
        v = k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2]
    return np.stack([u, v], axis=1)


def image_pixels(points_world: np.ndarray, camera: CameraPose, near_m: float = 1e-3
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The pixel each world point falls on in ``camera`` (rounded to the nearest), for z-buffers and lookups.

    Args:
        points_world: (N, 3) world points.
        camera: the camera (pose, intrinsics, image size).
        near_m: points at or nearer than this camera depth (metres) count as not in the image.

    Returns:
        ``(rows, cols, z, inside)``: (N,) int64 pixel row and column (0 where not ``inside``), (N,) camera
        depth, and (N,) bool: in front of the camera (z > ``near_m``) and inside the image.
    """
    cam = to_camera(points_world, camera.cam_to_world)
    z = cam[:, 2]
    inside = z > near_m
    uv = np.zeros((len(z), 2))
    uv[inside] = np.round(pixels_of(cam[inside], camera.intrinsics))
    inside &= (uv[:, 0] >= 0) & (uv[:, 0] < camera.width) & (uv[:, 1] >= 0) & (uv[:, 1] < camera.height)
    uv[~inside] = 0
    return uv[:, 1].astype(np.int64), uv[:, 0].astype(np.int64), z, inside


def pixel_rays(rows: np.ndarray, cols: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """World directions (N, 3) of the rays through pixels (``rows``, ``cols``), scaled so camera z = 1.

    A pixel at z-depth ``d`` is then the world point ``camera position + d * ray``.
    """
    k = np.asarray(intrinsics, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.float64).reshape(-1)
    cols = np.asarray(cols, dtype=np.float64).reshape(-1)
    rays_cam = np.stack([(cols - k[0, 2]) / k[0, 0], (rows - k[1, 2]) / k[1, 1], np.ones(rows.shape)], axis=1)
    return rays_cam @ np.asarray(cam_to_world, dtype=np.float64)[:3, :3].T


def grid_rays(intrinsics: np.ndarray, cam_to_world: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H*W, 3) float32 world directions of every pixel's ray, row-major, scaled so camera z = 1.

    :func:`pixel_rays` for a whole image, built by broadcasting one row and one column (a ray's camera x
    depends only on its column, its y only on its row): a few times faster than transforming every pixel.
    """
    k = np.asarray(intrinsics, dtype=np.float64)
    rotation = np.asarray(cam_to_world, dtype=np.float64)[:3, :3]
    x = ((np.arange(width) - k[0, 2]) / k[0, 0])[:, None] * rotation[:, 0]  # (W, 3)
    y = ((np.arange(height) - k[1, 2]) / k[1, 1])[:, None] * rotation[:, 1] + rotation[:, 2]  # (H, 3)
    rays = np.empty((height, width, 3), dtype=np.float32)
    np.add(y.astype(np.float32)[:, None, :], x.astype(np.float32)[None, :, :], out=rays)
    return rays.reshape(height * width, 3)


def unproject(depth: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Lifts an HxW z-depth image to HxWx3 world points (NaN where depth is invalid)."""
    height, width = depth.shape
    rows, cols = np.divmod(np.arange(height * width), width)
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float64).reshape(-1, 1)
    points = pixel_rays(rows, cols, intrinsics, cam_to_world) * z + np.asarray(cam_to_world, np.float64)[:3, 3]
    return points.reshape(height, width, 3)


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1 - np.cos(angle_rad)) * (k @ k)


def orbit(cam_to_world: np.ndarray, pivot: np.ndarray, move: CameraMove) -> np.ndarray:
    """Applies a :class:`CameraMove` about ``pivot`` and returns the new cam_to_world.

    Yaw turns about the world z axis through the pivot, pitch about the camera's x axis through the
    pivot (positive pitch raises the camera so it looks down more), zoom divides the distance to the
    pivot. The camera keeps looking at the same point relative to the pivot.

    Raises:
        ImpossibleCameraMoveError: the pitch would flip the camera over the vertical.
    """
    pose = np.asarray(cam_to_world, dtype=np.float64).copy()
    pivot = np.asarray(pivot, dtype=np.float64)
    yaw = _rotation(np.array([0.0, 0.0, 1.0]), np.radians(move.yaw_deg))
    # Positive pitch must raise the camera: rotating about camera +x by -pitch tips forward down.
    pitch = _rotation(pose[:3, 0], -np.radians(move.pitch_deg))
    rotation = yaw @ pitch
    offset = pose[:3, 3] - pivot
    new_offset = rotation @ offset / move.zoom
    new_axes = rotation @ pose[:3, :3]
    # Refuse moves that put the camera past the vertical (its image would be upside down).
    if new_axes[2, 1] > 1e-6 and pose[2, 1] <= 0:
        raise ImpossibleCameraMoveError("move.pitch_deg", "a pitch that keeps the camera below the vertical",
                                        move.pitch_deg)
    result = np.eye(4)
    result[:3, :3] = new_axes
    result[:3, 3] = pivot + new_offset
    return result
