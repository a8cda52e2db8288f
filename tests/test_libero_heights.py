"""HeightMap on synthetic top-down observations: which observed top faces say how to grasp an object."""

from __future__ import annotations

import numpy as np
import pytest

from joyai_embodied.planner.libero.heights import HeightMap

SIZE, FOCAL, CAMERA_Z = 256, 800.0, 1.0


def _top_down(box_xy_half: tuple[float, float], height_m: float) -> dict[str, np.ndarray]:
    """A camera 1 m above a table looking straight down at one box (instance 1) centred under it."""
    K = np.array([[FOCAL, 0, SIZE / 2], [0, FOCAL, SIZE / 2], [0, 0, 1]])
    pose = np.eye(4)
    pose[:3, :3] = np.diag([1.0, -1.0, -1.0])   # OpenCV camera: z down into the scene, y toward world -y
    pose[2, 3] = CAMERA_Z
    v, u = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    x, y = (u - SIZE / 2) / FOCAL * CAMERA_Z, -(v - SIZE / 2) / FOCAL * CAMERA_Z
    inside = (np.abs(x) < box_xy_half[0]) & (np.abs(y) < box_xy_half[1])
    depth = np.where(inside, CAMERA_Z - height_m, CAMERA_Z).astype(np.float32)
    return {"depth": depth, "segmentation": inside.astype(np.int32), "intrinsics": K, "cam_to_world": pose}


def test_narrow_axis_of_a_box_top_is_across_its_short_side():
    axis = HeightMap(_top_down((0.04, 0.015), 0.05)).narrow_axis(1)
    assert axis is not None
    assert abs(axis[1]) == pytest.approx(1.0, abs=0.05)


def test_a_knob_sized_top_face_gives_no_narrow_axis():
    # A moka pot's lid knob (2 x 1.2 cm) is longer one way, but says nothing about the pot's narrow side.
    assert HeightMap(_top_down((0.01, 0.006), 0.15)).narrow_axis(1) is None
