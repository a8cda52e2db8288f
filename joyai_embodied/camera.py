"""Camera geometry in the OpenCV convention (x right, y down, z forward; world z up).

Pure numpy; every function takes and returns float64 arrays.
"""

from __future__ import annotations

import numpy as np

from .errors import ImpossibleCameraMoveError
from .types import CameraMove


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


def project(points_world: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Projects (N, 3) world points; returns pixel coordinates (N, 2) as (u, v) and camera depth (N,)."""
    points = np.asarray(points_world, dtype=np.float64).reshape(-1, 3)
    world_to_cam = np.linalg.inv(cam_to_world)
    cam = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsics[0, 0] * cam[:, 0] / z + intrinsics[0, 2]
        v = intrinsics[1, 1] * cam[:, 1] / z + intrinsics[1, 2]
    return np.stack([u, v], axis=1), z


def to_camera(points_world: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """World points (N, 3) expressed in the camera frame."""
    world_to_cam = np.linalg.inv(cam_to_world)
    return np.asarray(points_world, dtype=np.float64).reshape(-1, 3) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]


def unproject(depth: np.ndarray, intrinsics: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Lifts an HxW z-depth image to HxWx3 world points (NaN where depth is invalid)."""
    height, width = depth.shape
    u, v = np.meshgrid(np.arange(width, dtype=np.float64) + 0.0, np.arange(height, dtype=np.float64))
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float64)
    x = (u - intrinsics[0, 2]) * z / intrinsics[0, 0]
    y = (v - intrinsics[1, 2]) * z / intrinsics[1, 1]
    cam = np.stack([x, y, z], axis=-1)
    return cam @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]


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
