"""Novel views and edits of the geometric backend, against an exactly ray-cast tabletop."""

import numpy as np
import pytest

from joyai_embodied import (AmbiguousObjectError, CameraMove, CameraPose, InvalidInputError, MoveObject,
                            RotateObject, UnknownObjectError)
from joyai_embodied.backends.geometric.editing import apply_edit, edit_object
from joyai_embodied.backends.geometric.render import render_cloud
from joyai_embodied.camera import orbit, project, unproject
from joyai_embodied.evaluation import synthetic
from joyai_embodied.evaluation.imagination import depth_absrel, psnr, ssim

WIDTH, HEIGHT = 320, 240
PIVOT = np.array([0.0, 0.0, synthetic.TABLE_HEIGHT + 0.03])


@pytest.fixture(scope="module")
def source():
    camera = synthetic.front_camera(WIDTH, HEIGHT)
    boxes = synthetic.default_boxes()
    observation = synthetic.observe(camera, boxes)
    return camera, boxes, observation, synthetic.lift(observation), synthetic.scene_objects(boxes)


def orbited(camera: CameraPose, **move) -> CameraPose:
    return CameraPose(orbit(camera.cam_to_world, PIVOT, CameraMove(**move)), camera.intrinsics, WIDTH, HEIGHT)


def seen_by_source(truth_depth: np.ndarray, camera: CameraPose, observation) -> np.ndarray:
    """Pixels of ``camera`` whose surface point the source camera saw (not occluded, inside its frame)."""
    points = unproject(truth_depth, camera.intrinsics, camera.cam_to_world).reshape(-1, 3)
    uv, z = project(points, observation.intrinsics, observation.cam_to_world)
    cols, rows = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
    inside = (cols >= 0) & (cols < WIDTH) & (rows >= 0) & (rows < HEIGHT) & (z > 0)
    seen = np.zeros(len(points), dtype=bool)
    source_depth = observation.depth[rows[inside], cols[inside]]
    seen[inside] = np.abs(source_depth - z[inside]) < 0.01 * z[inside] + 0.004
    return seen.reshape(truth_depth.shape)


def test_source_camera_reproduces_the_observation(source):
    camera, _, observation, cloud, _ = source
    view = render_cloud(cloud, camera)
    assert view.source == "geometric"
    assert view.valid_mask.all()
    np.testing.assert_array_equal(view.rgb, observation.rgb)
    np.testing.assert_array_equal(view.segmentation, observation.segmentation)
    np.testing.assert_allclose(view.depth, observation.depth, rtol=1e-5)


@pytest.mark.parametrize("yaw", [20, 45])
def test_orbited_view_matches_ground_truth_where_valid(source, yaw):
    camera, boxes, observation, cloud, _ = source
    target = orbited(camera, yaw_deg=yaw, pitch_deg=-5)
    view = render_cloud(cloud, target)
    truth = synthetic.raycast(target, boxes)
    valid = view.valid_mask
    assert 0.5 < valid.mean() < 1.0  # what the source never saw is not claimed
    assert (view.segmentation[valid] == truth["segmentation"][valid]).mean() > 0.995
    assert depth_absrel(view.depth, truth["depth"], valid) < 0.005
    colour_error = np.abs(view.rgb.astype(int) - truth["rgb"].astype(int)).max(axis=2)
    assert (colour_error[valid] <= 8).mean() > 0.93  # misses are resampled checker edges
    assert np.all(np.isnan(view.depth[~np.isfinite(view.depth)]))
    assert np.all(view.segmentation[np.isnan(view.depth)] == 0)
    assert np.all(view.rgb[np.isnan(view.depth)] == 0)


def test_surfaces_the_source_never_saw_are_not_marked_valid(source):
    camera, boxes, observation, cloud, _ = source
    target = orbited(camera, yaw_deg=60)
    view = render_cloud(cloud, target)
    truth = synthetic.raycast(target, boxes)
    unseen = ~seen_by_source(truth["depth"], target, observation)
    assert unseen.sum() > 1000  # the move does disocclude a lot
    assert view.valid_mask[unseen].mean() < 0.05


def test_moving_closer_leaves_no_cracks_in_observed_surfaces(source):
    camera, boxes, observation, cloud, _ = source
    target = orbited(camera, zoom=2.0)
    view = render_cloud(cloud, target)
    truth = synthetic.raycast(target, boxes)
    seen = seen_by_source(truth["depth"], target, observation)
    assert seen.sum() > 0.5 * seen.size
    assert np.isfinite(view.depth[seen]).mean() > 0.995
    assert view.valid_mask[seen].mean() > 0.98


def test_hole_filling_fills_small_gaps_and_marks_them_invalid(source):
    camera, _, _, cloud, _ = source
    target = orbited(camera, yaw_deg=30)
    sparse = cloud.select(np.arange(len(cloud)) % 7 != 0)  # knock out points to make pinholes
    raw = render_cloud(sparse, target, hole_fill_px=0)
    filled = render_cloud(sparse, target, hole_fill_px=2)
    newly = np.isnan(raw.depth) & np.isfinite(filled.depth)
    assert newly.sum() > 0
    assert not filled.valid_mask[newly].any()
    assert np.array_equal(np.isnan(filled.depth) & ~np.isnan(raw.depth), np.zeros_like(newly))


@pytest.mark.parametrize("width, height", [(2, 240), (320, 2), (2, 2)])
def test_images_smaller_than_the_hole_fill_radius_render(source, width, height):
    # Regression: hole filling indexed past the border of images narrower or shorter than its radius.
    camera, _, _, cloud, _ = source
    c0, r0 = (WIDTH - width) // 2, (HEIGHT - height) // 2
    k = camera.intrinsics.copy()
    k[0, 2] -= c0  # the same rays as the full image's pixels [r0:r0+height, c0:c0+width]
    k[1, 2] -= r0
    crop = CameraPose(camera.cam_to_world, k, width, height)
    view = render_cloud(cloud, crop, hole_fill_px=3)
    full = render_cloud(cloud, camera, hole_fill_px=0)
    window = (slice(r0, r0 + height), slice(c0, c0 + width))
    assert view.rgb.shape == (height, width, 3) and view.valid_mask.shape == (height, width)
    assert view.valid_mask.all()  # the source camera sees every pixel of its own crop
    np.testing.assert_array_equal(view.rgb, full.rgb[window])
    np.testing.assert_allclose(view.depth, full.depth[window], rtol=1e-5)


@pytest.mark.parametrize("bad, field", [("not a camera", "camera"), (None, "camera")])
def test_render_refuses_a_bad_camera(source, bad, field):
    with pytest.raises(InvalidInputError) as info:
        render_cloud(source[3], bad)
    assert info.value.field == field


@pytest.mark.parametrize("bad", [-1, 17, 1.5, True])
def test_render_refuses_a_bad_hole_fill(source, bad):
    with pytest.raises(InvalidInputError, match="hole_fill_px"):
        render_cloud(source[3], source[0], hole_fill_px=bad)


def test_move_edit_matches_the_moved_scene(source):
    camera, boxes, observation, cloud, objects = source
    to = (0.02, -0.22, synthetic.TABLE_HEIGHT)
    edited = apply_edit(cloud, objects, MoveObject("red cube", to=to))
    assert len(cloud) == observation.depth.size  # the input cloud is untouched
    moved = edited.points[edited.ids == 1]
    low, high = moved.min(axis=0), moved.max(axis=0)  # the top face spans the whole footprint
    np.testing.assert_allclose([*(low[:2] + high[:2]) / 2, low[2]], to, atol=0.004)

    view = render_cloud(edited, camera)
    truth = synthetic.raycast(camera, [b.moved(to) if b.id == 1 else b for b in boxes])
    valid = view.valid_mask
    assert (view.segmentation[valid] == truth["segmentation"][valid]).mean() > 0.999
    old_place = observation.segmentation == 1
    uncovered = old_place & (truth["segmentation"] == 0)
    # The table the cube hid is filled (plane depth, table colour) and flagged as not observed.
    assert np.isfinite(view.depth[uncovered]).mean() > 0.98
    assert not view.valid_mask[uncovered].any()
    assert depth_absrel(view.depth, truth["depth"], uncovered) < 0.005
    table_colours = np.asarray(synthetic.TABLE_COLORS)
    fill = view.rgb[uncovered].astype(int).mean(axis=0)
    assert np.abs(fill - table_colours.mean(axis=0)).max() < 20


def test_rotate_edit_turns_points_about_the_object_centre(source):
    _, _, _, cloud, objects = source
    edited = apply_edit(cloud, objects, RotateObject("blue box", yaw_deg=90))
    before, after = cloud.points[cloud.ids == 2], edited.points[edited.ids == 2]
    centre = np.asarray(objects[1].centroid)
    np.testing.assert_allclose(after[:, 2], before[:, 2])
    np.testing.assert_allclose(after[:, 0] - centre[0], -(before[:, 1] - centre[1]), atol=1e-5)
    np.testing.assert_allclose(after[:, 1] - centre[1], before[:, 0] - centre[0], atol=1e-5)
    turned = edit_object(objects[1], RotateObject("blue box", yaw_deg=90))
    np.testing.assert_allclose(turned.centroid, centre)
    np.testing.assert_allclose(turned.obb_rotation[:2, 0], [0.0, 1.0], atol=1e-9)


def test_repeated_edits_do_not_duplicate_the_fill(source):
    _, _, _, cloud, objects = source
    first = apply_edit(cloud, objects, MoveObject("yellow cube", to=(0.0, 0.2, synthetic.TABLE_HEIGHT)))
    second = apply_edit(first, objects, RotateObject("yellow cube", yaw_deg=30))
    assert len(first) > len(cloud)
    assert len(second) == len(first)


@pytest.mark.parametrize("to, words", [((0.0, 0.0, 0.2), "under"), ((1.5, 0.0, 0.4), "within 1 m")])
def test_edit_refuses_targets_off_the_table(source, to, words):
    _, _, _, cloud, objects = source
    with pytest.raises(InvalidInputError, match=words) as info:
        apply_edit(cloud, objects, MoveObject("red cube", to=to))
    assert info.value.field == "edit.to"


def test_edit_names_unknown_and_ambiguous_objects(source):
    _, _, _, cloud, objects = source
    with pytest.raises(UnknownObjectError, match="red cube"):
        apply_edit(cloud, objects, MoveObject("green sphere", to=(0, 0, 0.4)))
    with pytest.raises(AmbiguousObjectError):
        apply_edit(cloud, objects, RotateObject("cube", yaw_deg=10))
    with pytest.raises(InvalidInputError, match="edit"):
        apply_edit(cloud, objects, CameraMove(yaw_deg=10))


def test_metrics_behave():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    noisy = np.clip(image.astype(int) + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)
    assert psnr(image, image) == float("inf")
    assert ssim(image, image) == pytest.approx(1.0)
    assert 15 < psnr(image, noisy) < 30
    noisier = np.clip(image.astype(int) + rng.normal(0, 60, image.shape), 0, 255).astype(np.uint8)
    assert 1.0 > ssim(image, noisy) > ssim(image, noisier)
    assert ssim(image, noisy) == pytest.approx(ssim(noisy, image))
    assert abs(ssim(image, np.full_like(image, 128))) < 0.05  # no structure in common
    mask = np.zeros((40, 50), dtype=bool)
    assert np.isnan(psnr(image, noisy, mask))
    depth = np.full((4, 4), 2.0, np.float32)
    assert depth_absrel(depth * 1.1, depth) == pytest.approx(0.1, rel=1e-5)


@pytest.fixture(scope="module")
def observed():
    from joyai_embodied import WorldModel

    wm = WorldModel.load("geometric")
    observation = synthetic.observe(synthetic.front_camera(160, 120), synthetic.default_boxes())
    return wm, wm.observe(observation)


@pytest.mark.parametrize("pitch", [-60.0, -89.0])
def test_imagine_refuses_a_pitch_that_puts_the_camera_under_the_table(observed, pitch):
    from joyai_embodied import ImpossibleCameraMoveError

    wm, scene = observed
    with pytest.raises(ImpossibleCameraMoveError) as info:
        wm.imagine(scene, CameraMove(pitch_deg=pitch))
    assert isinstance(info.value, InvalidInputError)
    assert info.value.field == "move.pitch_deg" and "support plane" in str(info.value)
    with pytest.raises(ImpossibleCameraMoveError):
        wm.imagine_batch(scene, [CameraMove(yaw_deg=10.0), CameraMove(pitch_deg=pitch)])
    view = wm.imagine(scene, CameraMove(pitch_deg=-30.0))  # lower, still above the table top
    assert view.cam_to_world[2, 3] > synthetic.TABLE_HEIGHT


@pytest.mark.parametrize("moves", [None, CameraMove(yaw_deg=10.0), "yaw 10", 3])
def test_imagine_batch_names_moves_when_they_are_not_a_list(observed, moves):
    wm, scene = observed
    with pytest.raises(InvalidInputError) as info:
        wm.imagine_batch(scene, moves)
    assert info.value.field == "moves"
