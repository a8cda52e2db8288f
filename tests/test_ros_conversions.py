"""ROS message <-> numpy/core-type conversions (no nodes, no DDS traffic)."""

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("joyai_interfaces")

from joyai_embodied.camera import look_at  # noqa: E402
from joyai_embodied.errors import InvalidInputError  # noqa: E402
from joyai_embodied.types import ImaginedView, Observation, Relation, SceneObject  # noqa: E402
from ros_nodes import conversions  # noqa: E402

RNG = np.random.default_rng(0)
K = np.array([[300.0, 0, 32], [0, 300.0, 24], [0, 0, 1]])


def _observation(width=64, height=48, segmentation=True):
    depth = RNG.uniform(0.5, 2.0, (height, width)).astype(np.float32)
    return Observation(rgb=RNG.integers(0, 256, (height, width, 3), dtype=np.uint8), depth=depth,
                       intrinsics=K, cam_to_world=look_at([0.8, 0.1, 1.0], [0, 0, 0.4]),
                       segmentation=RNG.integers(0, 5, (height, width)).astype(np.int32) if segmentation else None,
                       labels={1: "red cube", 2: "green plate"})


def test_rgb8_read_is_zero_copy_and_round_trips():
    rgb = RNG.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    msg = conversions.numpy_to_image(rgb, "rgb8")
    assert (msg.width, msg.height, msg.step, msg.encoding) == (64, 48, 192, "rgb8")
    view = conversions.rgb_from_image(msg)
    np.testing.assert_array_equal(view, rgb)
    assert np.shares_memory(view, np.frombuffer(msg.data, dtype=np.uint8))


def test_bgr8_and_padded_rows_are_converted():
    rgb = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    msg = conversions.numpy_to_image(rgb[:, :, ::-1], "bgr8")
    np.testing.assert_array_equal(conversions.rgb_from_image(msg), rgb)
    # rows padded to 20 bytes (15 used): the padding must be skipped
    padded = np.zeros((4, 20), dtype=np.uint8)
    padded[:, :15] = rgb.reshape(4, 15)
    msg = conversions.numpy_to_image(rgb, "rgb8")
    msg.step, msg.data = 20, padded.tobytes()
    np.testing.assert_array_equal(conversions.rgb_from_image(msg), rgb)


def test_depth_16uc1_millimetres_become_metres():
    mm = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    depth = conversions.depth_from_image(conversions.numpy_to_image(mm, "16UC1"))
    assert depth.dtype == np.float32
    np.testing.assert_allclose(depth, [[0.0, 1.0], [1.5, 65.535]])


def test_big_endian_float_depth_is_read_correctly():
    depth = np.array([[0.5, 1.25]], dtype=np.float32)
    msg = conversions.numpy_to_image(depth, "32FC1")
    msg.is_bigendian, msg.data = 1, depth.astype(">f4").tobytes()
    np.testing.assert_array_equal(conversions.depth_from_image(msg), depth)


@pytest.mark.parametrize("mutate, field", [
    (lambda m: setattr(m, "encoding", "yuv422"), "rgb.encoding"),
    (lambda m: setattr(m, "encoding", "mono8"), "rgb.encoding"),
    (lambda m: setattr(m, "step", 10), "rgb.step"),
    (lambda m: setattr(m, "height", 47), "rgb.data"),
])
def test_malformed_images_name_the_field(mutate, field):
    msg = conversions.numpy_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8")
    mutate(msg)
    with pytest.raises(InvalidInputError) as exc:
        conversions.rgb_from_image(msg, "rgb")
    assert exc.value.field == field


def test_depth_with_colour_encoding_is_refused():
    msg = conversions.numpy_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8")
    with pytest.raises(InvalidInputError, match="depth.encoding: expected 32FC1"):
        conversions.depth_from_image(msg)


def test_pose_round_trip_and_non_unit_quaternion():
    for eye in ([0.8, 0.1, 1.0], [-0.3, 0.9, 0.7], [0.0, 0.0, 2.0], [0.01, -1.2, 0.41]):
        matrix = look_at(eye, [0, 0, 0.4])
        np.testing.assert_allclose(conversions.pose_to_matrix(conversions.matrix_to_pose(matrix)), matrix,
                                   atol=1e-9)
    pose = conversions.matrix_to_pose(np.eye(4))
    pose.orientation.w = 0.0
    with pytest.raises(InvalidInputError, match="camera_pose.orientation: expected a unit quaternion"):
        conversions.pose_to_matrix(pose)


def test_observation_round_trips_through_request_fields():
    from joyai_interfaces.srv import SpatialQuery

    obs = _observation()
    request = conversions.fill_scene_fields(SpatialQuery.Request(), obs)
    back = conversions.observation_from_request(request)
    np.testing.assert_array_equal(back.rgb, obs.rgb)
    np.testing.assert_array_equal(back.depth, obs.depth)
    np.testing.assert_array_equal(back.segmentation, obs.segmentation)
    np.testing.assert_allclose(back.intrinsics, obs.intrinsics)
    np.testing.assert_allclose(back.cam_to_world, obs.cam_to_world, atol=1e-9)
    assert back.labels == obs.labels


def test_request_with_mismatched_sizes_or_bad_depth_is_refused():
    from joyai_interfaces.srv import SpatialQuery

    request = conversions.fill_scene_fields(SpatialQuery.Request(), _observation())
    request.depth = conversions.numpy_to_image(np.ones((10, 10), np.float32), "32FC1")
    with pytest.raises(InvalidInputError, match="depth.width/height: expected the rgb size 64x48, got 10x10"):
        conversions.observation_from_request(request)
    request.depth = conversions.numpy_to_image(np.full((48, 64), np.nan, np.float32), "32FC1")
    with pytest.raises(InvalidInputError, match="depth: expected at least one valid"):
        conversions.observation_from_request(request)
    request = conversions.fill_scene_fields(SpatialQuery.Request(), _observation())
    request.camera_info.width = 640
    with pytest.raises(InvalidInputError, match="camera_info.width/height"):
        conversions.observation_from_request(request)
    request = conversions.fill_scene_fields(SpatialQuery.Request(), _observation())
    request.label_names = ["only one"]
    with pytest.raises(InvalidInputError, match="label_names: expected one name per label id"):
        conversions.observation_from_request(request)


def test_scene_object_relation_answer_and_view_round_trip_exactly():
    from joyai_interfaces.action import Imagine
    from joyai_interfaces.srv import SpatialQuery

    from joyai_embodied.types import Answer
    from ros_nodes import results

    rotation = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    obj = SceneObject(id=3, name="red cube", centroid=np.array([0.1, -0.2, 0.425]), extent=np.array([.05, .05, .05]),
                      obb_rotation=rotation, pixel_count=321, visible_fraction=0.7512345678901, color="red",
                      shape="cube")
    back = results.scene_object_from_msg(results.scene_object_to_msg(obj))
    assert (back.id, back.name, back.color, back.shape, back.pixel_count) == (3, "red cube", "red", "cube", 321)
    np.testing.assert_array_equal(back.centroid, obj.centroid)
    np.testing.assert_array_equal(back.obb_rotation, rotation)
    assert back.visible_fraction == obj.visible_fraction  # float64 on the wire: exact

    rel = Relation("red cube", "green plate", True, False, False, True, True, False, 0.2, "camera", 0.9123456789, True)
    assert results.relation_from_msg(results.relation_to_msg(rel)) == rel

    obs = _observation()
    view = ImaginedView(rgb=obs.rgb, depth=obs.depth, segmentation=obs.segmentation, intrinsics=K,
                        cam_to_world=obs.cam_to_world, valid_mask=obs.depth > 1.0, source="geometric")
    result = results.fill_view(Imagine.Result(), view)
    assert result.valid_mask.encoding == "mono8"
    back_view = results.view_from_msg(result)
    for name in ("rgb", "depth", "segmentation", "intrinsics", "cam_to_world", "valid_mask"):
        np.testing.assert_array_equal(getattr(back_view, name), getattr(view, name), name)
    assert (back_view.source, back_view.prompt) == ("geometric", None)

    for value in (None, 3, 0.1234567890123, True, ["red cube", "blue cylinder"], [0.05, 0.05, 0.07]):
        answer = Answer(text="it is", value=value, unit="m", confidence=0.873, supported=True, frame="world",
                        views=(view,))
        response = SpatialQuery.Response()
        results.fill_answer(response, answer)
        again = results.answer_from_response(response)
        assert again.value == value and type(again.value) is type(value)
        assert (again.text, again.unit, again.confidence, again.frame, again.raw_text) == ("it is", "m", 0.873,
                                                                                            "world", None)
        np.testing.assert_array_equal(again.views[0].rgb, view.rgb)


def test_errors_cross_with_their_fields():
    from joyai_interfaces.srv import SpatialQuery

    from joyai_embodied.errors import RemoteError, SceneExpiredError, UnknownObjectError
    from ros_nodes import results

    for exc in (InvalidInputError("depth", "at least one valid pixel", "none valid"),
                UnknownObjectError("golden teapot", ["red cube"]), SceneExpiredError("ab" * 16)):
        response = SpatialQuery.Response()
        results.fill_error(response, exc)
        assert not response.success and response.error == str(exc) and response.error_type == type(exc).__name__
        again = results.error_from_response(response)
        assert type(again) is type(exc) and str(again) == str(exc)
        for name in ("field", "expected", "got", "name", "known", "handle"):
            assert getattr(again, name, None) == getattr(exc, name, None), name
    response = SpatialQuery.Response()
    results.fill_error(response, KeyError("planes"))  # a bug, not the caller's: reported as such
    assert response.error_type == "InternalError" and "KeyError" in response.error
    assert isinstance(results.error_from_response(response), RemoteError)


def test_exact_pose_fields_win_over_the_rounded_pose():
    from joyai_interfaces.srv import SpatialQuery

    obs = _observation()
    request = conversions.fill_scene_fields(SpatialQuery.Request(), obs)
    np.testing.assert_array_equal(conversions.observation_from_request(request).cam_to_world, obs.cam_to_world)
    request.cam_to_world = [1.0] * 15
    with pytest.raises(InvalidInputError, match="cam_to_world: expected 16 finite"):
        conversions.observation_from_request(request)
