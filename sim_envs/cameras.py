"""The env's named cameras and the pinhole model they share with observations (OpenCV convention).

Every camera is a look-at pose (eye, target) with a vertical field of view. Intrinsics follow the
pixel-index convention of ``joyai_embodied.camera``: pixel (u, v) has its centre at integer (u, v), so an
image W pixels wide spans u in [-0.5, W - 0.5] and a centred camera has cx = (W - 1) / 2.
"""

from __future__ import annotations

import math

import numpy as np

from joyai_embodied.camera import look_at
from joyai_embodied.errors import InvalidInputError

from .constants import TABLE_HEIGHT

#: name -> (eye, target, vertical field of view in degrees). "front" faces the robot across the table
#: (the robot works from -x), elevated ~45 degrees.
CAMERAS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float], float]] = {
    "front": ((0.78, 0.0, TABLE_HEIGHT + 0.74), (0.0, 0.0, TABLE_HEIGHT), 45.0),
    "side": ((0.0, -0.92, TABLE_HEIGHT + 0.62), (0.0, 0.0, TABLE_HEIGHT), 45.0),
    # Straight down, image "up" pointing to +x (away from the robot): a small x offset fixes the roll.
    "top": ((-1e-3, 0.0, TABLE_HEIGHT + 1.15), (0.0, 0.0, TABLE_HEIGHT), 45.0),
}


def check_camera_name(name: str) -> str:
    """Returns ``name`` if it names a camera; raises InvalidInputError listing the valid names otherwise."""
    if not isinstance(name, str) or name not in CAMERAS:
        raise InvalidInputError("camera", f"one of {sorted(CAMERAS)}", repr(name))
    return name


def camera_to_world(name: str) -> np.ndarray:
    """4x4 float64 cam_to_world (OpenCV: x right, y down, z forward) of the named camera."""
    eye, target, _ = CAMERAS[check_camera_name(name)]
    return look_at(np.array(eye), np.array(target))


def intrinsics_for(width: int, height: int, fovy_deg: float) -> np.ndarray:
    """3x3 float64 K of a centred pinhole camera with square pixels and the given vertical field of view."""
    focal = height / (2.0 * math.tan(math.radians(fovy_deg) / 2.0))
    return np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def camera_intrinsics(name: str, width: int, height: int) -> np.ndarray:
    """Intrinsics of the named camera at an image size."""
    return intrinsics_for(width, height, CAMERAS[check_camera_name(name)][2])
