"""The ROS 2 nodes end to end: `joyai-embodied ros` in its own process, clients in this one.

Loopback only: tests/conftest.py sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a ROS_DOMAIN_ID of this
run's own; the node process inherits both. Answers are checked against the simulator's ground truth.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("joyai_interfaces")
gym = pytest.importorskip("gymnasium")

from joyai_embodied.camera import to_camera  # noqa: E402
from ros_helpers import connect_client  # noqa: E402
from ros_nodes.child_process import start_launcher, stop_process  # noqa: E402
from joyai_embodied.types import Observation  # noqa: E402

MARGIN_M = 0.04  # pairs closer than this along an axis are not asserted (the relation is borderline)


def _geometric_available() -> bool:
    try:
        from joyai_embodied.backends.geometric import GeometricBackend  # noqa: F401
        import sim_envs  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _geometric_available(), reason="needs the geometric backend and sim_envs")


@pytest.fixture(scope="module")
def node_process(ros_context):
    """`joyai-embodied ros --preset geometric`, started once for the module."""
    process = start_launcher(["--preset", "geometric"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield process
    stop_process(process)


@pytest.fixture(scope="module")
def client(node_process):
    client = connect_client(node_process, "test_client")
    yield client
    client.destroy_node()


def _frames(seed: int, width: int = 640, height: int = 480):
    import sim_envs  # noqa: F401  (registers the env)

    env = gym.make("joyai/TabletopSpatial-v0", width=width, height=height)
    try:
        obs, info = env.reset(seed=seed)
    finally:
        env.close()
    labels = {o["id"]: o["name"] for o in info["objects"]}
    return Observation.from_dict(obs, labels=labels), info["objects"]


@pytest.fixture(scope="module")
def scene():
    return _frames(seed=3)


def _clear_pairs(observation: Observation, objects: list[dict]):
    """(a, b, axis, a_is_less) for object pairs clearly separated along camera x (axis 0) or z (axis 2)."""
    cam = to_camera(np.array([o["position"] for o in objects]), observation.cam_to_world)
    for (i, a), (j, b) in itertools.permutations(enumerate(objects), 2):
        for axis in (0, 2):
            if abs(cam[i, axis] - cam[j, axis]) > MARGIN_M:
                yield a["name"], b["name"], axis, bool(cam[i, axis] < cam[j, axis])


def test_graph_shows_the_service_and_the_action(client):
    services = dict(client.get_service_names_and_types())
    assert services["/joyai/spatial_query"] == ["joyai_interfaces/srv/SpatialQuery"]
    assert "joyai_interfaces/action/Imagine_SendGoal" in services["/joyai/imagine/_action/send_goal"]


def test_relations_match_simulator_ground_truth(client, scene):
    observation, objects = scene
    pairs = list(_clear_pairs(observation, objects))
    assert pairs
    for subject, reference, axis, less in pairs[:12]:
        result = client.spatial_query(observation, subject=subject, reference=reference)
        assert result.success, result.error
        rel = result.relation
        assert (rel.subject, rel.reference, rel.frame) == (subject, reference, "camera")
        if axis == 0:
            assert (rel.left_of, rel.right_of) == (less, not less), (subject, reference)
        else:
            assert (rel.in_front_of, rel.behind) == (less, not less), (subject, reference)
        assert result.unit == "m" and subject in result.answer


def test_objects_match_simulator_positions(client, scene):
    observation, objects = scene
    result = client.spatial_query(observation, question="How many objects are there?")
    assert result.success, result.error
    found = {o.name: o for o in result.objects}
    assert set(found) == {o["name"] for o in objects}
    for truth in objects:
        # Only the visible surface is seen, so the centre estimate is off by up to about half a size.
        error = np.linalg.norm(found[truth["name"]].centroid[:2] - np.asarray(truth["position"][:2]))
        assert error < 0.03, (truth["name"], error)


def test_imagine_orbits_the_camera_and_keeps_objects_where_they_are(client, scene):
    observation, objects = scene
    stages = []
    result = client.imagine(observation, yaw_deg=25.0, pitch_deg=5.0,
                            feedback_callback=lambda progress, stage: stages.append(stage))
    assert result.status == "succeeded" and result.success, result.error
    view = result.view
    assert view.rgb.shape == observation.rgb.shape and view.valid_mask.mean() > 0.5
    assert stages[0] == "observe" and "imagine" in stages and stages[-1] == "done"
    # the camera turned 25 degrees about the vertical through the scene
    heading = [np.degrees(np.arctan2(p[1, 2], p[0, 2])) for p in (observation.cam_to_world, view.cam_to_world)]
    assert abs((heading[1] - heading[0] + 180) % 360 - 180 - 25.0) < 1.0
    # every object centre projects onto its own id in the imagined segmentation (when not occluded)
    hits = 0
    for truth in objects:
        cam = to_camera(np.asarray(truth["position"]), view.cam_to_world)[0]
        u = int(view.intrinsics[0, 0] * cam[0] / cam[2] + view.intrinsics[0, 2])
        v = int(view.intrinsics[1, 1] * cam[1] / cam[2] + view.intrinsics[1, 2])
        hits += int(view.segmentation[v, u] == truth["id"])
    assert hits >= len(objects) - 1


def test_imagine_with_a_move_edit_moves_the_object(client, scene):
    observation, objects = scene
    mover = next(o for o in objects if o["shape"] != "plate")
    target = [0.0, 0.0, 0.40]
    result = client.imagine(observation, edit="move", object_name=mover["name"], target=target)
    assert result.success, result.error
    moved = next(o for o in result.objects if o.name == mover["name"])
    np.testing.assert_allclose(moved.centroid[:2], target[:2], atol=0.02)


def test_cancel_ends_the_goal_as_canceled(client, scene):
    observation, _ = scene
    future = client.imagine_async(observation, yaw_deg=10.0)
    goal_handle = client._wait(future, 10.0, "imagine")
    assert goal_handle.accepted
    cancel = client._wait(goal_handle.cancel_goal_async(), 10.0, "cancel")
    assert len(cancel.goals_canceling) == 1
    outcome = client.to_imagine_result(client._wait(goal_handle.get_result_async(), 30.0, "result"))
    assert outcome.status == "canceled" and not outcome.success and "canceled" in outcome.error


def _bad_requests(observation: Observation):
    from joyai_interfaces.srv import SpatialQuery

    from ros_nodes import conversions

    def request(**changes):
        req = conversions.fill_scene_fields(SpatialQuery.Request(), observation)
        req.subject, req.reference = observation.labels[1], observation.labels[2]
        for key, value in changes.items():
            target, _, attr = key.rpartition("__")
            setattr(getattr(req, target) if target else req, attr, value)
        return req

    nan_depth = conversions.numpy_to_image(np.full(observation.depth.shape, np.nan, np.float32), "32FC1")
    small_depth = conversions.numpy_to_image(np.ones((10, 10), np.float32), "32FC1")
    return [
        ("wrong rgb encoding", request(rgb__encoding="yuv422"), "rgb.encoding"),
        ("depth as colour", request(depth__encoding="rgb8"), "depth.encoding"),
        ("step too small", request(rgb__step=100), "rgb.step"),
        ("size mismatch", request(depth=small_depth), "depth.width/height"),
        ("empty rgb", request(rgb=conversions.Image()), "use_latest"),
        ("unknown object", request(subject="golden teapot"), "unknown object 'golden teapot'"),
        ("all-NaN depth", request(depth=nan_depth), "depth: expected at least one valid"),
        ("subject alone", request(reference=""), "reference: expected an object name"),
    ]


def test_bad_input_is_refused_and_the_node_keeps_serving(client, scene):
    observation, _ = scene
    for what, request, expected in _bad_requests(observation):
        response = client._wait(client._query_client.call_async(request), 20.0, what)
        assert not response.success, what
        assert expected in response.error, (what, response.error)
    good = client.spatial_query(observation, subject=observation.labels[1], reference=observation.labels[2])
    assert good.success, good.error


class _CameraPublisher:
    """Publishes an Observation on the nodes' default camera topics, as the sim bridge does (one stamp)."""

    TOPICS = {"rgb": "camera/color/image_raw", "depth": "camera/depth/image_raw",
              "segmentation": "camera/segmentation/image_raw", "camera_info": "camera/color/camera_info",
              "camera_pose": "camera/pose"}

    def __init__(self, node):
        from geometry_msgs.msg import PoseStamped
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image

        types = {"rgb": Image, "depth": Image, "segmentation": Image, "camera_info": CameraInfo,
                 "camera_pose": PoseStamped}
        self.node = node
        self.publishers = {key: node.create_publisher(types[key], topic, qos_profile_sensor_data)
                           for key, topic in self.TOPICS.items()}
        self.frame: dict = {}

    def set_frame(self, observation: Observation) -> None:
        """Converts ``observation`` into the five messages, stamped now."""
        from geometry_msgs.msg import PoseStamped
        from joyai_interfaces.srv import SpatialQuery

        from ros_nodes import conversions

        request = conversions.fill_scene_fields(SpatialQuery.Request(), observation)
        self.frame = {key: getattr(request, key) for key in ("rgb", "depth", "segmentation", "camera_info")}
        self.frame["camera_pose"] = PoseStamped(pose=request.camera_pose)
        stamp = self.node.get_clock().now().to_msg()
        for msg in self.frame.values():
            msg.header.stamp = stamp

    def publish(self) -> None:
        for key, msg in self.frame.items():
            self.publishers[key].publish(msg)

    def close(self) -> None:
        for publisher in self.publishers.values():
            self.node.destroy_publisher(publisher)


def _as_published(observation: Observation) -> Observation:
    """The observation as the camera topics carry it: its pose through a PoseStamped (quaternion, rounded)."""
    from ros_nodes import conversions

    pose = conversions.pose_to_matrix(conversions.matrix_to_pose(observation.cam_to_world))
    return dataclasses.replace(observation, cam_to_world=pose)


def _query_latest_until(client, camera: _CameraPublisher, accept, timeout_s: float = 10.0, **query):
    """Republishes the camera frame (best-effort topics) and asks ``query`` with use_latest until ``accept``."""
    deadline, result = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        camera.publish()
        time.sleep(0.05)
        result = client.spatial_query(None, **query)
        if result.success and accept(result):
            break
    return result


def test_use_latest_answers_from_the_subscribed_frames(client):
    observation, objects = _frames(seed=5, width=160, height=120)
    refused = client.spatial_query(None, question="How many objects are there?")
    assert not refused.success and "use_latest" in refused.error

    camera = _CameraPublisher(client)
    camera.set_frame(observation)
    subject, reference = objects[0]["name"], objects[1]["name"]
    try:
        result = _query_latest_until(client, camera, lambda r: True, subject=subject, reference=reference,
                                     labels=observation.labels)
    finally:
        camera.close()
    assert result is not None and result.success, result.error
    direct = client.spatial_query(_as_published(observation), subject=subject, reference=reference)
    assert result.relation == direct.relation
    assert [o.name for o in result.objects] == [o.name for o in direct.objects]


#: One label set for every frame of the cache test: the request is then the same from frame to frame, so
#: only the node's frame tracking can tell the frames apart (labels are part of the cache key).
GENERIC_LABELS = {obj_id: f"object {obj_id}" for obj_id in range(1, 21)}


def _matches_truth(result, objects: list[dict]) -> bool:
    """Whether the response's objects are this frame's objects, where the simulator put them."""
    found = {o.name: o for o in result.objects}
    truth = {GENERIC_LABELS[o["id"]]: o for o in objects}
    if set(found) != set(truth):
        return False
    return all(np.linalg.norm(found[name].centroid[:2] - np.asarray(o["position"][:2])) < 0.03
               for name, o in truth.items())


def test_use_latest_follows_each_new_frame_and_repeats_agree(client):
    """The node caches the Scene of the latest frame: a new frame must replace it, repeats must agree."""
    camera = _CameraPublisher(client)
    try:
        for seed in (11, 12, 11):  # back to the first frame too: a stale cache of either would show
            observation, objects = _frames(seed=seed, width=160, height=120)
            observation = dataclasses.replace(observation, labels=GENERIC_LABELS)
            camera.set_frame(observation)
            pairs = [(GENERIC_LABELS[next(o["id"] for o in objects if o["name"] == a)],
                      GENERIC_LABELS[next(o["id"] for o in objects if o["name"] == b)], axis, less)
                     for a, b, axis, less in _clear_pairs(observation, objects)]
            subject, reference, axis, less = pairs[0]
            first = _query_latest_until(client, camera, lambda r: _matches_truth(r, objects), subject=subject,
                                        reference=reference, labels=GENERIC_LABELS)
            assert first is not None and first.success, first.error
            assert _matches_truth(first, objects), (seed, [(o.name, o.centroid) for o in first.objects])
            rel = first.relation
            flags = (rel.left_of, rel.right_of) if axis == 0 else (rel.in_front_of, rel.behind)
            assert flags == (less, not less), (seed, subject, reference)

            if seed == 11:
                # Other labels on the same frame are another Scene, not the cached one. (Asked before the
                # queries below, which make the GENERIC_LABELS Scene the cached one again before a new frame.)
                renamed = {obj_id: f"thing {obj_id}" for obj_id in GENERIC_LABELS}
                relabelled = client.spatial_query(None, question="How many objects are there?", labels=renamed)
                assert relabelled.success, relabelled.error
                assert sorted(o.name for o in relabelled.objects) == sorted(renamed[o["id"]] for o in objects)

            # No frame is published from here on: these answer from the cached Scene.
            direct = client.spatial_query(_as_published(observation), subject=subject, reference=reference)
            for _ in range(3):
                again = client.spatial_query(None, subject=subject, reference=reference, labels=GENERIC_LABELS)
                assert again.success, again.error
                assert again.relation == first.relation == direct.relation
                assert [(o.name, o.id) for o in again.objects] == [(o.name, o.id) for o in first.objects]
            for other_subject, other_reference, other_axis, other_less in pairs[1:4]:
                other = client.spatial_query(None, subject=other_subject, reference=other_reference,
                                             labels=GENERIC_LABELS)
                assert other.success, other.error
                r = other.relation
                flags = (r.left_of, r.right_of) if other_axis == 0 else (r.in_front_of, r.behind)
                assert flags == (other_less, not other_less), (seed, other_subject, other_reference)

    finally:
        camera.close()


def test_a_streaming_camera_does_not_evict_observed_scenes(client):
    """use_latest scenes of a camera republishing (new stamps) are released as frames pass, not piled up."""
    from ros_nodes.nodes.common import DEFAULT_MAX_SCENES

    observation, objects = _frames(seed=8, width=160, height=120)
    kept = client.observe(observation)
    assert kept.success, kept.error
    camera = _CameraPublisher(client)
    seen = set()
    try:
        for _ in range(DEFAULT_MAX_SCENES + 8):
            camera.set_frame(observation)  # a new stamp: a new frame for the node
            result = _query_latest_until(client, camera, lambda r: r.scene_id not in seen,
                                         question="How many objects are there?", labels=observation.labels)
            assert result.success, result.error
            seen.add(result.scene_id)
    finally:
        camera.close()
    assert len(seen) > DEFAULT_MAX_SCENES  # more use_latest scenes than the store holds went by
    again = client.spatial_query(scene_id=kept.scene_id, subject=objects[0]["name"], reference=objects[1]["name"])
    assert again.success, again.error


def test_eight_concurrent_clients_each_get_every_answer_once(node_process, scene):
    from ros_nodes.clients.world_model_client import WorldModelClient

    observation, objects = _frames(seed=7, width=160, height=120)
    pairs = [(a["name"], b["name"]) for a, b in itertools.permutations(objects, 2)]
    answers: dict[tuple[int, int], tuple[str, str]] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        client = WorldModelClient(f"load_client_{index}")
        try:
            client.wait_until_ready(30)
            for k in range(20):
                subject, reference = pairs[(index * 20 + k) % len(pairs)]
                result = client.spatial_query(observation, subject=subject, reference=reference, timeout_s=60)
                with lock:
                    if not result.success:
                        errors.append(result.error)
                    elif (index, k) in answers:
                        errors.append(f"duplicate answer for {(index, k)}")
                    else:
                        answers[(index, k)] = (result.relation.subject, result.relation.reference)
        except Exception as exc:  # surfaced below; a thread must not die silently
            with lock:
                errors.append(repr(exc))
        finally:
            client.destroy_node()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[:3]
    assert len(answers) == 160
    for (index, k), names in answers.items():
        assert names == pairs[(index * 20 + k) % len(pairs)]


def _same_objects(a, b) -> None:
    assert [o.name for o in a] == [o.name for o in b]
    for x, y in zip(a, b):
        for field in dataclasses.fields(x):
            np.testing.assert_array_equal(getattr(x, field.name), getattr(y, field.name), err_msg=field.name)


def test_ros_backend_gives_the_in_process_answers_exactly(client, scene):
    """WorldModel.load("ros"): the same objects, pivot, relations, answers, views and edits as in process."""
    from joyai_embodied import MoveObject, RotateObject, WorldModel
    from joyai_embodied.camera import look_at
    from joyai_embodied.errors import UnknownObjectError
    from joyai_embodied.types import CameraMove, CameraPose
    from ros_nodes.clients.ros_backend import RosBackend

    observation, objects = scene
    local = WorldModel.load("geometric")
    remote = WorldModel.load("ros", start_nodes=False, timeout_s=30)
    try:
        assert isinstance(remote.backend, RosBackend)
        names = [o["name"] for o in objects]
        local_scene, remote_scene = local.observe(observation), remote.observe(observation)
        _same_objects(remote_scene.objects, local_scene.objects)
        np.testing.assert_array_equal(remote_scene.pivot, local_scene.pivot)
        side = CameraPose(look_at([0.0, -1.0, 0.9], [0.0, 0.0, 0.4]), observation.intrinsics,
                          observation.width, observation.height)
        for frame in ("camera", "world", side):
            assert remote.relation(remote_scene, names[0], names[1], frame=frame) == \
                local.relation(local_scene, names[0], names[1], frame=frame)
        question = f"Is the {names[0]} left of the {names[1]}?"
        assert remote.ask(remote_scene, question) == local.ask(local_scene, question)
        assert remote.ask(remote_scene, "How many objects are there?") == \
            local.ask(local_scene, "How many objects are there?")
        with pytest.raises(UnknownObjectError, match="unknown object 'golden teapot'") as exc:
            remote.relation(remote_scene, "golden teapot", names[0])
        assert exc.value.name == "golden teapot" and exc.value.known == sorted(names)
        with pytest.raises(UnknownObjectError) as bad:
            remote.edit(remote_scene, MoveObject("golden teapot", to=[0.0, 0.0, 0.4]))
        with pytest.raises(UnknownObjectError) as bad_local:
            local.edit(local_scene, MoveObject("golden teapot", to=[0.0, 0.0, 0.4]))
        assert str(bad.value) == str(bad_local.value)
        for move in (CameraMove(yaw_deg=25.0, pitch_deg=5.0), side):
            view, here = remote.imagine(remote_scene, move), local.imagine(local_scene, move)
            for field in dataclasses.fields(view):
                np.testing.assert_array_equal(getattr(view, field.name), getattr(here, field.name), field.name)
        mover = next(o for o in objects if o["shape"] != "plate")
        for edit in (MoveObject(mover["name"], to=[0.0, 0.0, 0.40]), RotateObject(mover["name"], yaw_deg=30.0)):
            edited, edited_here = remote.edit(remote_scene, edit), local.edit(local_scene, edit)
            _same_objects(edited.objects, edited_here.objects)
            np.testing.assert_array_equal(edited.pivot, edited_here.pivot)
            assert edited.edits == (edit,) and edited.data.scene_id != remote_scene.data.scene_id
            assert remote.relation(edited, mover["name"], names[1]) == local.relation(edited_here, mover["name"],
                                                                                       names[1])
        imagined = remote.answer_with_imagination(remote_scene, question, max_views=2)
        imagined_here = local.answer_with_imagination(local_scene, question, max_views=2)
        assert dataclasses.replace(imagined, views=()) == dataclasses.replace(imagined_here, views=())
        assert len(imagined.views) == len(imagined_here.views)
        for view, here in zip(imagined.views, imagined_here.views):
            np.testing.assert_array_equal(view.rgb, here.rgb)
            np.testing.assert_array_equal(view.cam_to_world, here.cam_to_world)
    finally:
        remote.close()
        local.close()


def test_a_scene_id_stands_for_its_frame_and_unknown_ids_expire(client, scene):
    observation, objects = scene
    observed = client.observe(observation)
    assert observed.success and len(observed.scene_id) == 32, observed.error
    assert sorted(o.name for o in observed.objects) == sorted(o["name"] for o in objects)
    subject, reference = objects[0]["name"], objects[1]["name"]
    by_id = client.spatial_query(scene_id=observed.scene_id, subject=subject, reference=reference)
    by_frame = client.spatial_query(observation, subject=subject, reference=reference)
    assert by_id.success and by_frame.success
    assert by_id.relation == by_frame.relation and by_id.scene_id == observed.scene_id
    np.testing.assert_array_equal(by_id.pivot, by_frame.pivot)
    view = client.imagine(scene_id=observed.scene_id, yaw_deg=20.0)
    assert view.success and view.scene_id == observed.scene_id, view.error

    from joyai_embodied.errors import SceneExpiredError
    from ros_nodes.clients.world_model_client import error_from_result

    for result in (client.spatial_query(scene_id="f" * 32, question="How many objects are there?"),
                   client.imagine(scene_id="f" * 32, yaw_deg=10.0)):
        assert not result.success and result.error_type == "SceneExpiredError"
        exc = error_from_result(result)
        assert isinstance(exc, SceneExpiredError) and exc.handle == "f" * 32


def test_invalid_input_keeps_its_field_over_ros(client, scene):
    from joyai_embodied.errors import InvalidInputError
    from ros_nodes.clients.world_model_client import error_from_result

    observation, objects = scene
    result = client.spatial_query(observation, subject=objects[0]["name"], reference="")
    exc = error_from_result(result)
    assert isinstance(exc, InvalidInputError) and exc.field == "reference" and "object name" in exc.expected


def test_images_beyond_the_ros_limit_are_refused_with_the_limit(client, scene):
    from joyai_interfaces.srv import SpatialQuery

    from joyai_embodied.errors import InvalidInputError
    from ros_nodes import conversions

    observation, _ = scene
    side = 1500  # 2.25 Mpx > 1920 x 1080
    big = dataclasses.replace(observation, rgb=np.zeros((side, side, 3), np.uint8), depth=None, segmentation=None,
                              intrinsics=observation.intrinsics)
    with pytest.raises(InvalidInputError, match=str(conversions.MAX_IMAGE_PIXELS)):
        client.spatial_query(big, question="How many objects are there?")  # refused before sending
    request = SpatialQuery.Request(question="How many objects are there?")
    request.rgb = conversions.numpy_to_image(big.rgb, "rgb8")
    request.camera_info = conversions.camera_info_from_intrinsics(observation.intrinsics, side, side)
    request.cam_to_world = conversions.matrix_values(observation.cam_to_world)
    started = time.monotonic()
    response = client._wait(client._query_client.call_async(request), 30.0, "big request")
    assert not response.success and str(conversions.MAX_IMAGE_PIXELS) in response.error, response.error
    assert response.error.startswith("rgb.width/height") and time.monotonic() - started < 10

    # Replies are bounded too: an imagined view beyond the limit, more views than one reply holds.
    from joyai_interfaces.action import Imagine

    from joyai_embodied.types import CameraPose

    kept = client.observe(observation).scene_id
    huge = CameraPose(observation.cam_to_world, observation.intrinsics, 2500, 2500)
    with pytest.raises(InvalidInputError, match="viewpoint.width/height"):
        client.imagine(scene_id=kept, viewpoint=huge)  # refused before sending
    goal = Imagine.Goal(scene_id=kept, use_viewpoint=True, seed=-1)
    conversions.fill_camera_fields(goal, "viewpoint", huge)
    handle = client._wait(client._imagine_client.send_goal_async(goal), 30.0, "goal")
    outcome = client.to_imagine_result(client._wait(handle.get_result_async(), 30.0, "result"))
    assert outcome.status == "aborted" and outcome.error.startswith("viewpoint_info.width/height"), outcome.error
    many = client.spatial_query(scene_id=kept, question=f"Is the {observation.labels[1]} left of the "
                                f"{observation.labels[2]}?", with_imagination=True, max_views=16)
    assert not many.success and many.error.startswith("max_views: expected at most 7 imagined"), many.error


def test_img2img_options_reach_the_node_and_a_geometric_node_refuses_them_as_in_process(client, scene):
    """``init`` / ``strength`` travel in the Imagine goal; the node's WorldModel refuses them by field name."""
    from joyai_embodied import WorldModel
    from joyai_embodied.errors import InvalidInputError
    from joyai_embodied.types import CameraMove
    from ros_nodes.clients.world_model_client import error_from_result

    observation, _ = scene
    local = WorldModel.load("geometric")
    remote = WorldModel.load("ros", start_nodes=False, timeout_s=30)
    try:
        local_scene, remote_scene = local.observe(observation), remote.observe(observation)
        move = CameraMove(yaw_deg=15.0)
        for options in ({"init": "geometric"}, {"strength": 0.5}, {"init": "noise", "strength": 0.3}):
            with pytest.raises(InvalidInputError) as over_ros:
                remote.imagine(remote_scene, move, **options)
            with pytest.raises(InvalidInputError) as here:
                local.imagine(local_scene, move, **options)
            assert (over_ros.value.field, over_ros.value.expected, str(over_ros.value)) == \
                (here.value.field, here.value.expected, str(here.value))
            with pytest.raises(InvalidInputError, match=here.value.field):
                remote.imagine_batch(remote_scene, [move, CameraMove(yaw_deg=-15.0)], **options)
        # the raw client sends what it is given: the node's service checks the range and names the field
        refused = client.imagine(scene_id=remote_scene.data.scene_id, yaw_deg=10.0, strength=-1.0)
        assert refused.status == "aborted" and error_from_result(refused).field == "strength"
        refused = client.imagine(scene_id=remote_scene.data.scene_id, yaw_deg=10.0, init="geometric")
        assert refused.status == "aborted" and error_from_result(refused).field == "init"
        # unset ("" / 0 in the goal) is the backend's default: the view comes as before
        assert client.imagine(scene_id=remote_scene.data.scene_id, yaw_deg=10.0).success
    finally:
        remote.close()
        local.close()


def test_ros_backends_in_one_process_have_node_names_of_their_own(client):
    """Several ``WorldModel.load("ros")`` in one process: distinct node names (no rosout clash), all in the graph."""
    from joyai_embodied import WorldModel

    models = [WorldModel.load("ros", start_nodes=False, timeout_s=30) for _ in range(3)]
    try:
        names = [model.backend.client.get_name() for model in models]
        assert len(set(names)) == 3 and all(f"_{os.getpid()}_" in name for name in names), names
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            in_graph = client.get_node_names()
            if all(in_graph.count(name) == 1 for name in names):
                break
            time.sleep(0.1)
        assert all(in_graph.count(name) == 1 for name in names), (names, in_graph)
    finally:
        for model in models:
            model.close()
