"""Camera geometry: projection round trips and the CameraMove orbit conventions."""

import numpy as np
import pytest

from joyai_embodied import CameraMove, ImpossibleCameraMoveError
from joyai_embodied.camera import look_at, orbit, project, to_camera, unproject

K = np.array([[200.0, 0, 64], [0, 200.0, 48], [0, 0, 1]])


def test_look_at_is_opencv_and_points_at_target():
    pose = look_at([1.0, 0.0, 1.0], [0.0, 0.0, 0.4])
    assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3))
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    uv, z = project([[0.0, 0.0, 0.4]], K, pose)
    assert np.allclose(uv[0], [64, 48])
    assert z[0] == pytest.approx(np.linalg.norm([1.0, 0.0, 0.6]))
    assert pose[2, 1] < 0  # image "down" points down in the world


def test_unproject_then_project_round_trip():
    pose = look_at([0.8, 0.3, 1.1], [0.0, 0.0, 0.4])
    depth = np.random.default_rng(1).uniform(0.5, 2.0, (96, 128)).astype(np.float32)
    points = unproject(depth, K, pose)
    uv, z = project(points.reshape(-1, 3), K, pose)
    rows, cols = np.mgrid[0:96, 0:128]
    assert np.allclose(uv[:, 0], cols.ravel(), atol=1e-6)
    assert np.allclose(uv[:, 1], rows.ravel(), atol=1e-6)
    assert np.allclose(z, depth.ravel(), atol=1e-5)
    assert np.allclose(to_camera(points.reshape(-1, 3), pose)[:, 2], depth.ravel(), atol=1e-5)


def test_orbit_yaw_pitch_zoom_about_pivot():
    pivot = np.array([0.0, 0.0, 0.4])
    pose = look_at([1.0, 0.0, 0.9], pivot)
    yawed = orbit(pose, pivot, CameraMove(yaw_deg=90))
    assert np.allclose(yawed[:3, 3], [0.0, 1.0, 0.9])          # counter-clockwise seen from above
    assert np.allclose(project([pivot], K, yawed)[0][0], [64, 48])  # still looks at the pivot
    raised = orbit(pose, pivot, CameraMove(pitch_deg=20))
    assert raised[2, 3] > pose[2, 3]
    assert np.linalg.norm(raised[:3, 3] - pivot) == pytest.approx(np.linalg.norm(pose[:3, 3] - pivot))
    closer = orbit(pose, pivot, CameraMove(zoom=2.0))
    assert np.linalg.norm(closer[:3, 3] - pivot) == pytest.approx(np.linalg.norm(pose[:3, 3] - pivot) / 2)


def test_orbit_refuses_flipping_over_the_top():
    pivot = np.array([0.0, 0.0, 0.4])
    pose = look_at([1.0, 0.0, 1.4], pivot)  # already 45 degrees down
    with pytest.raises(ImpossibleCameraMoveError) as info:
        orbit(pose, pivot, CameraMove(pitch_deg=60))
    assert info.value.field == "move.pitch_deg"
