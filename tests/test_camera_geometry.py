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


def test_world_to_camera_is_the_inverse_and_every_transform_agrees():
    from joyai_embodied import CameraPose
    from joyai_embodied.camera import grid_rays, image_pixels, pixel_rays, projection_matrix, world_to_camera

    pose = look_at([0.8, 0.3, 1.1], [0.0, 0.0, 0.4])
    assert np.allclose(world_to_camera(pose) @ pose, np.eye(4), atol=1e-12)
    points = np.random.default_rng(2).uniform([-0.3, -0.3, 0.3], [0.3, 0.3, 0.6], (50, 3))
    camera = CameraPose(pose, K, 128, 96)
    cam = to_camera(points, pose)
    assert np.allclose(cam, points @ np.linalg.inv(pose)[:3, :3].T + np.linalg.inv(pose)[:3, 3])
    assert np.allclose(camera.world_to_cam, world_to_camera(pose))
    uv, z = project(points, K, pose)
    assert np.allclose(z, cam[:, 2])
    homogeneous = np.hstack([points, np.ones((50, 1))]) @ projection_matrix(K, pose).T
    assert np.allclose(homogeneous[:, :2] / homogeneous[:, 2:], uv)
    rows, cols, depth, inside = image_pixels(points, camera)
    expected = (z > 1e-3) & (np.round(uv[:, 0]) >= 0) & (np.round(uv[:, 0]) < 128) \
        & (np.round(uv[:, 1]) >= 0) & (np.round(uv[:, 1]) < 96)
    assert np.array_equal(inside, expected) and inside.any() and not inside.all()
    assert np.array_equal(cols[inside], np.round(uv[inside, 0])) and np.array_equal(rows[inside], np.round(uv[inside, 1]))
    # A pixel's ray scaled by its z-depth lands back on the point; the whole-image rays are the same rays.
    rays = pixel_rays(uv[:, 1], uv[:, 0], K, pose)
    assert np.allclose(pose[:3, 3] + rays * z[:, None], points)
    rows, cols = np.divmod(np.arange(96 * 128), 128)
    grid = grid_rays(K, pose, 96, 128)
    assert grid.dtype == np.float32 and np.allclose(grid, pixel_rays(rows, cols, K, pose), atol=1e-6)


def _tabletop_scene(objects):
    from joyai_embodied import Observation, Scene

    pose = look_at([0.75, 0.0, 1.0], [0.0, 0.0, 0.4])  # ~39 degrees down onto a table at z = 0.4
    observation = Observation(rgb=np.zeros((96, 128, 3), np.uint8), intrinsics=K, cam_to_world=pose)
    return Scene(observation=observation, objects=objects, pivot=np.array([0.0, 0.0, 0.43]), backend="test")


@pytest.mark.parametrize("pitch", [-60.0, -89.0])
def test_orbit_scene_refuses_a_camera_below_the_table(pitch):
    from joyai_embodied import SceneObject
    from joyai_embodied.spatial import orbit_scene

    cube = SceneObject(1, "red cube", centroid=np.array([0.0, 0.0, 0.43]), extent=np.full(3, 0.06))
    scene = _tabletop_scene([cube])
    with pytest.raises(ImpossibleCameraMoveError) as info:
        orbit_scene(scene, CameraMove(pitch_deg=pitch))
    assert info.value.field == "move.pitch_deg"
    assert f"pitch {pitch:g}" in str(info.value) and "below the plane" in str(info.value)
    lower = orbit_scene(scene, CameraMove(pitch_deg=-30.0, yaw_deg=20.0))
    assert lower.position[2] > 0.4 + 0.01
    # The backend's own support plane is used when it gives one: over a floor at z = -0.5 (no table),
    # the same move is fine.
    with pytest.raises(ImpossibleCameraMoveError):
        orbit_scene(scene, CameraMove(pitch_deg=-45.0), plane=np.array([0.0, 0.0, 1.0, -0.4]))
    assert orbit_scene(scene, CameraMove(pitch_deg=-45.0), plane=np.array([0.0, 0.0, 1.0, 0.5])).position[2] < 0.4


def test_orbit_scene_refuses_a_camera_inside_an_object():
    from joyai_embodied import SceneObject
    from joyai_embodied.spatial import orbit_scene

    big = SceneObject(1, "big box", centroid=np.array([0.0, 0.0, 0.5]), extent=np.array([0.3, 0.3, 0.2]))
    scene = _tabletop_scene([big])
    with pytest.raises(ImpossibleCameraMoveError) as info:
        orbit_scene(scene, CameraMove(zoom=10.0))  # 0.09 m from the pivot: inside the 0.3 m box
    assert info.value.field == "move" and "inside the big box" in str(info.value)
    assert orbit_scene(scene, CameraMove(zoom=2.0)).position[0] > 0.15


def test_direction_offsets_follow_the_one_direction_table():
    from joyai_embodied import InvalidInputError
    from joyai_embodied.spatial import DIRECTION_WORDS, DIRECTIONS, direction_offset, offsets_in_view

    pose = look_at([0.0, -1.0, 0.4], [0.0, 0.0, 0.4])  # looking along +y: camera right is world +x
    lateral, depth, vertical = offsets_in_view([0.1, 0.2, 0.5], [0.0, 0.0, 0.4], pose)
    assert (lateral, depth, vertical) == pytest.approx((0.1, 0.2, 0.1))
    assert direction_offset("right_of", lateral, depth) == pytest.approx(0.1)
    assert direction_offset("left of", lateral, depth) == pytest.approx(-0.1)
    assert direction_offset("behind", lateral, depth) == pytest.approx(0.2)
    assert set(DIRECTION_WORDS.values()) == set(DIRECTIONS)
    assert np.isnan(direction_offset("in_front_of", float("nan"), float("nan")))
    with pytest.raises(InvalidInputError) as info:
        direction_offset("above", lateral, depth)
    assert info.value.field == "direction"
