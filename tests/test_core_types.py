"""Validation of the core types: every bad field is named in the error."""

import numpy as np
import pytest

from joyai_embodied import (AmbiguousObjectError, CameraMove, CameraPose, InvalidInputError, MoveObject,
                            Observation, RotateObject, Scene, SceneObject, UnknownObjectError)
from joyai_embodied.camera import look_at

K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
POSE = look_at([1.0, 0.0, 1.0], [0.0, 0.0, 0.4])


def frame(**overrides):
    rng = np.random.default_rng(0)
    fields = dict(rgb=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
                  depth=np.full((48, 64), 1.2, np.float32), intrinsics=K, cam_to_world=POSE)
    fields.update(overrides)
    return Observation(**fields)


def test_valid_observation_keeps_arrays_and_camera():
    obs = frame(segmentation=np.zeros((48, 64), np.int64), labels={1: " red cube "})
    assert obs.segmentation.dtype == np.int32
    assert obs.labels == {1: "red cube"}
    assert (obs.width, obs.height) == (64, 48)
    assert np.allclose(obs.camera.cam_to_world, POSE)


@pytest.mark.parametrize("overrides, field", [
    (dict(rgb=np.zeros((48, 64), np.uint8)), "rgb"),
    (dict(rgb=np.zeros((48, 64, 3), np.float32)), "rgb"),
    (dict(rgb=np.zeros((1, 5000, 3), np.uint8)), "rgb"),
    (dict(depth=np.ones((10, 10), np.float32)), "depth"),
    (dict(depth=np.full((48, 64), np.nan, np.float32)), "depth"),
    (dict(depth=np.full((48, 64), 1200, np.uint16)), "depth"),
    (dict(depth=np.full((48, 64), 1200.0, np.float32)), "depth"),
    (dict(intrinsics=np.eye(4)), "intrinsics"),
    (dict(intrinsics=np.array([[np.nan, 0, 1], [0, 1, 1], [0, 0, 1]])), "intrinsics"),
    (dict(intrinsics=np.array([[-5.0, 0, 1], [0, 5, 1], [0, 0, 1]])), "intrinsics"),
    (dict(cam_to_world=np.eye(3)), "cam_to_world"),
    (dict(cam_to_world=np.diag([2.0, 1, 1, 1])), "cam_to_world"),
    (dict(cam_to_world=np.diag([-1.0, 1, 1, 1])), "cam_to_world"),
    (dict(segmentation=np.zeros((48, 64), np.float32)), "segmentation"),
    (dict(labels={1: ""}), "labels[1]"),
])
def test_bad_fields_are_named(overrides, field):
    with pytest.raises(InvalidInputError) as info:
        frame(**overrides)
    assert info.value.field == field
    assert str(info.value).startswith(field + ": expected")


def test_partially_invalid_depth_is_accepted():
    depth = np.full((48, 64), 1.0, np.float32)
    depth[:10] = np.nan
    depth[10:20] = 0
    assert np.isnan(frame(depth=depth).depth[0, 0])


def test_millimetre_depth_is_caught_when_valid_pixels_are_sparse():
    # The unit check samples every 4th pixel; depth valid only off that grid must still be checked.
    depth = np.zeros((48, 64), np.float32)
    depth[1::4, 1::4] = 1200.0
    with pytest.raises(InvalidInputError, match="millimetres"):
        frame(depth=depth)
    depth[1::4, 1::4] = 1.2
    assert frame(depth=depth).depth[1, 1] == pytest.approx(1.2)


def test_from_dict_reports_missing_keys():
    with pytest.raises(InvalidInputError, match="intrinsics"):
        Observation.from_dict({"rgb": np.zeros((4, 4, 3), np.uint8), "cam_to_world": POSE})


@pytest.mark.parametrize("kwargs, field", [
    (dict(zoom=0.0), "move.zoom"), (dict(pitch_deg=120), "move.pitch_deg"),
    (dict(yaw_deg=float("nan")), "move.yaw_deg"), (dict(yaw_deg="left"), "move.yaw_deg"),
])
def test_bad_camera_moves(kwargs, field):
    with pytest.raises(InvalidInputError) as info:
        CameraMove(**kwargs)
    assert info.value.field == field


def test_edits_validate_fields():
    assert MoveObject("red cube", to=[0.1, 0, 0.4]).to == (0.1, 0.0, 0.4)
    with pytest.raises(InvalidInputError, match="edit.to"):
        MoveObject("red cube", to=[0.1, 0.0])
    with pytest.raises(InvalidInputError, match="edit.object"):
        RotateObject("", yaw_deg=10)
    with pytest.raises(InvalidInputError, match="edit.yaw_deg"):
        RotateObject("mug", yaw_deg=float("inf"))


def test_camera_pose_validates():
    with pytest.raises(InvalidInputError, match="camera"):
        CameraPose(POSE, K, 0, 10)


def _object(i, name):
    return SceneObject(id=i, name=name, centroid=np.zeros(3), extent=np.ones(3) * 0.05)


def test_scene_find_exact_partial_unknown_and_ambiguous():
    scene = Scene(observation=frame(), objects=[_object(1, "red cube"), _object(2, "blue cube"),
                                                _object(3, "green plate")], pivot=np.zeros(3), backend="test")
    assert scene.find("Red  Cube").id == 1
    assert scene.find("plate").id == 3
    with pytest.raises(AmbiguousObjectError, match="blue cube"):
        scene.find("cube")
    with pytest.raises(UnknownObjectError) as info:
        scene.find("yellow sphere")
    assert info.value.known == ["blue cube", "green plate", "red cube"]


@pytest.mark.parametrize("labels", [{"abc": "red cube"}, {1.5: "red cube"}, {True: "red cube"}, {None: "mug"}])
def test_labels_keys_that_are_not_instance_ids_are_named(labels):
    with pytest.raises(InvalidInputError) as info:
        frame(labels=labels)
    assert info.value.field == "labels" and "instance ids" in str(info.value)


def test_labels_keys_may_be_digit_strings():
    assert frame(labels={"2": "mug", np.int64(3): "cup"}).labels == {2: "mug", 3: "cup"}


def test_images_larger_than_the_limit_are_refused_with_the_limit():
    from joyai_embodied.types import MAX_IMAGE_SIDE

    with pytest.raises(InvalidInputError) as info:
        Observation(rgb=np.zeros((MAX_IMAGE_SIDE + 1, 2, 3), np.uint8), intrinsics=K, cam_to_world=POSE)
    assert info.value.field == "rgb" and str(MAX_IMAGE_SIDE) in str(info.value)
    with pytest.raises(InvalidInputError) as info:
        CameraPose(POSE, K, MAX_IMAGE_SIDE + 1, 48)
    assert str(MAX_IMAGE_SIDE) in str(info.value)
    Observation(rgb=np.zeros((MAX_IMAGE_SIDE, 2, 3), np.uint8), intrinsics=K, cam_to_world=POSE)  # the limit itself


def test_relation_offsets_default_to_unknown():
    from joyai_embodied import Relation

    rel = Relation("a", "b", False, False, False, False, False, False, 0.1, "camera")
    assert np.isnan(rel.lateral_m) and np.isnan(rel.depth_m) and np.isnan(rel.vertical_m)
